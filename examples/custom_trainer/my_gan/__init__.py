"""A user's own GAN for gansweep: a conditional GAN on 8x8 digits (see ../README.md)."""
