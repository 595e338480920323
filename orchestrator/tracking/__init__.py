"""Everything MLflow on the driver's side, and the names every side uses: the layout (layout.py:
every tag, attribute, metric, artifact and model name, imports nothing), the driver's writes
(tracker.py) and a run's contents as MLflow entities (runs.py), the sweep's page on its parent run
(page.py, figures.py), the report (report.py), and the MLflow UI with its links (ui.py)."""
