"""Fixtures of the orchestrator tests beside tests/conftest.py's."""

from tests.orchestrator.plugin_project import project  # noqa: F401 - the fixture
