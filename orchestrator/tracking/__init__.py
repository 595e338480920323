"""Everything MLflow on the driver's side (the names it writes are orchestrator/layout.py's): the
driver's writes (tracker.py) and a run's contents as MLflow entities (runs.py), the sweep's page
on its parent run (page.py, figures.py), the report (report.py), and the MLflow UI with its links
(ui.py)."""
