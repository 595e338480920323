"""Where a sweep's things live and whether they can be used: the study storage, the tracking
URI and the checkpoint root resolved (uris.py, roots.py) into `Settings` (settings.py), checked
before anything is created (checks.py), never shown with a secret (redact.py); a local MLflow
store whose folder moved, mended (relocate.py). Imports neither MLflow nor Optuna."""
