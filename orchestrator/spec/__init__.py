"""The sweep spec: a YAML file validated once into frozen dataclasses (sweep.py: the whole spec;
space.py: the search space; search.py: objectives, sampler, pruner, enqueued points; pruners.py:
a named pruner built by Optuna to check its options; health.py: the GAN-health rules;
population.py: the pbt scheduler). After `SweepSpec.load` the rest of the
code trusts the spec; every refusal names the file and the field."""
