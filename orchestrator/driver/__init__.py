"""One sweep's driver: `launch` (launch.py: every check, then Ray, the parent run and the study,
the loop, the page and report), the loop that waits on actors and applies decisions
(scheduler.py), the pure decision table (decide.py), trials asked and told (trials.py), one
driver per sweep (lease.py), the data prepared once (data.py), signals (signals.py), and
`check-trainer` (check_trainer.py)."""
