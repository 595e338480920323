"""After a sweep: the top configs retrained on fresh seeds (confirm.py), the champion registered
in the MLflow Model Registry with its provenance (promote.py), and samples of any logged or
registered generator (sample.py)."""
