"""Inside a trial actor: the worker that trains a trial chunk by chunk (worker.py), its MLflow
writes on a thread of their own (runlog.py, retry.py), the generator exported as an MLflow model
in a helper process (exporter.py, models.py), and self-describing checkpoints (checkpoints.py).
The driver reaches it only through orchestrator/boundary.py's types."""
