"""A sweep's study in its storage: made or continued by name, loaded without making a file,
trials reopened by a later driver, seeds a function of sweep seed and trial number."""

from __future__ import annotations

import threading

import optuna
import pytest

from orchestrator.errors import SpecError
from orchestrator.spec.sweep import SweepSpec
from orchestrator.study.studies import (
    load_confirm_study,
    load_study,
    open_storage,
    open_study,
    reopen_trial,
    trial_seed,
    trials_used,
)
from tests.conftest import SYNTHETIC


def test_a_new_sqlite_storage_opened_by_three_at_the_same_instant_opens_for_all(tmp_path):
    """Two drivers (or a driver and `status`) opening a study database nobody has made yet both
    make its tables: the one that loses that race opens it a moment later instead of failing."""
    for round_ in range(3):
        url, errors = f"sqlite:///{tmp_path}/optuna-{round_}.db", []
        barrier = threading.Barrier(3)

        def open_it(url=url, errors=errors, barrier=barrier):
            barrier.wait()
            try:
                open_storage(url).get_all_studies()
            except Exception as exc:  # noqa: BLE001 - any failure is the test's
                errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")

        threads = [threading.Thread(target=open_it) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_a_sweep_launched_again_continues_its_study_and_a_later_driver_reopens_its_trials(
        tmp_path, kind):
    storage = f"sqlite:///{tmp_path}/o.db" if kind == "sqlite" else str(tmp_path / "o.journal")
    spec = SweepSpec.parse(SYNTHETIC)
    first = open_study(spec, storage)
    left = first.ask()
    left.suggest_float("x", -2.0, 2.0)
    again = open_study(spec, storage)  # a later driver: the same study, its trial RUNNING
    trial = reopen_trial(again, open_storage(storage), left.number)
    trial.report(0.5, 2)
    again.tell(trial, 0.25)
    assert [(t.state.name, t.value, t.intermediate_values) for t in load_study(
        "synth", storage).trials] == [("COMPLETE", 0.25, {2: 0.5})]
    assert trials_used(again) == 1 and load_confirm_study("synth", storage) is None


def test_a_study_with_other_directions_is_refused_and_a_missing_file_is_not_made(tmp_path):
    storage = f"sqlite:///{tmp_path}/o.db"
    optuna.create_study(storage=storage, study_name="synth", direction="maximize")
    with pytest.raises(SpecError, match="was created with directions \\['maximize'\\]"):
        open_study(SweepSpec.parse(SYNTHETIC), storage)
    with pytest.raises(SpecError, match="no sweep named 'synth': .* does not exist"):
        load_study("synth", f"sqlite:///{tmp_path}/none.db")
    assert not (tmp_path / "none.db").exists()


def test_a_trials_seed_depends_on_the_sweep_seed_and_its_number_only():
    assert trial_seed(0, 3) == trial_seed(0, 3)
    assert len({trial_seed(0, 3), trial_seed(0, 4), trial_seed(1, 3)}) == 3
