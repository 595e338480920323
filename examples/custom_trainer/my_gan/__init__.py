"""A user's own GAN for gansweep: a conditional GAN on 8x8 digits (sweep: ../sweep.yaml; the
contract: "Your own GAN" in the project README, and README.md beside this package)."""
