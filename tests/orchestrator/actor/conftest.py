"""An MLflow run on a real sqlite store, for the actor's writers."""

import pytest
from mlflow import MlflowClient


@pytest.fixture
def run(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    run = client.create_run(client.create_experiment("x", (tmp_path / "a").as_uri()))
    return client, run.info.run_id
