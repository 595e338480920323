"""Everything Optuna, on the driver only: the sweep's study and storage (studies.py), its sampler
and each trial's params (samplers.py), the launch record `resume` and `confirm` rebuild from
(record.py), the study read back for `status` and `best` (results.py), the one ranking of
trials and confirmed configs (ranking.py), and what more trials are expected to find
(expected.py, numpy only)."""
