"""The launch record: what `gansweep resume NAME` (and `confirm`) need, kept on the study as a
plain dict (`LAUNCH_ATTR`) and read back as a typed `LaunchRecord`, whichever version wrote it;
the sweep's spec and `Settings` are rebuilt from it in one place (`LaunchRecord.sweep_spec`,
`LaunchRecord.settings`)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from orchestrator.errors import SpecError
from orchestrator.layout import LAUNCH_ATTR
from orchestrator.spec.sweep import SweepSpec
from orchestrator.stores.redact import MASK, redact_uri
from orchestrator.stores.settings import Settings, check_job_store, check_job_stores
from orchestrator.stores.uris import absolute_storage, local_file, resolve_storage
from orchestrator.study.studies import load_study


@dataclass(frozen=True)
class LaunchRecord:
    """What `gansweep resume NAME` needs, kept on the study (LAUNCH_ATTR) as a plain dict. Store
    URIs are kept with their secrets masked: `resume` takes the real one from the flag or the
    environment (a record from before masking holds the URI itself)."""

    spec: str  # the spec file's text
    trials: int
    spec_path: str  # absolute; its folder holds the spec's plug-ins; "" when it had no file
    tracking_uri: str
    checkpoint_root: str  # holds no secret: refused there
    feature_extractor: str | None = None
    feature_extractor_sha256: str | None = None  # None: launched without an extractor
    extractor_recorded: bool = True  # False: a record from before the extractor was recorded

    @classmethod
    def of(cls, spec: SweepSpec, settings: Settings, extractor: bytes | None) -> LaunchRecord:
        return cls(spec=spec.text, trials=spec.budget.trials,
                   spec_path=str(Path(spec.path).resolve()) if spec.path else "",
                   tracking_uri=redact_uri(settings.tracking_uri),
                   checkpoint_root=settings.checkpoint_root,
                   feature_extractor=settings.feature_extractor,
                   feature_extractor_sha256=digest(extractor))

    def sweep_spec(self, trials: int | None = None) -> SweepSpec:
        """The spec the sweep was last launched with; `trials`: --trials, else the record's."""
        spec = SweepSpec.parse(self.spec, source=Path(self.spec_path or "spec").name,
                               path=self.spec_path)
        return spec.with_trials(self.trials if trials is None else trials)

    def settings(self, storage: str | None, tracking_uri: str | None = None,
                 address: str | None = None, checkpoint_root: str | None = None,
                 feature_extractor: str | None = None) -> Settings:
        """The stores the sweep was launched with, each overridden by its flag (None: not
        given). A tracking URI recorded with its secret masked comes from the environment
        (`recorded_store`); a moved feature extractor must be given (`stored_extractor`)."""
        tracking_uri = recorded_store(tracking_uri, self.tracking_uri, "--tracking-uri",
                                      "MLFLOW_TRACKING_URI")
        check_job_stores(storage, tracking_uri)
        return Settings.resolve(storage, tracking_uri, address,
                                checkpoint_root or self.checkpoint_root,
                                feature_extractor=stored_extractor(self, feature_extractor))

    def to_dict(self) -> dict:
        found = asdict(self)
        del found["extractor_recorded"]  # told by the keys' presence, as older versions wrote
        if not self.extractor_recorded:
            del found["feature_extractor"], found["feature_extractor_sha256"]
        return found

    @classmethod
    def from_dict(cls, found: dict) -> LaunchRecord:
        """A record of any version: unknown keys are ignored; an old one may lack the extractor
        keys, and hold None for spec_path."""
        known = {f.name for f in fields(cls)} - {"extractor_recorded"}
        kept = {k: v for k, v in found.items() if k in known}
        return cls(**{**kept, "spec_path": kept.get("spec_path") or "",
                      "extractor_recorded": "feature_extractor_sha256" in found})


def launch_record(name: str, storage: str | None) -> LaunchRecord:
    """What the sweep NAME was last launched with (its spec text and stores), read from the
    study storage `storage` (the --storage flag, else GANSWEEP_STORAGE, else the local file;
    a sweep's driver running as a Ray Job must be given it)."""
    check_job_store("--storage", storage)
    storage = absolute_storage(resolve_storage(storage))
    study = load_study(name, storage)
    found = study.user_attrs.get(LAUNCH_ATTR)
    if not found:
        raise SpecError(f"sweep {name!r} in {redact_uri(storage)} was not launched by this "
                        f"version of gansweep: launch its spec again instead")
    return LaunchRecord.from_dict(found)


def stored_extractor(record: LaunchRecord, given: str | None) -> str | None:
    """The feature extractor `resume` uses: the one given, else the launch record's file."""
    path = given or record.feature_extractor
    if path and not given and not Path(path).exists():
        raise SpecError(f"--feature-extractor: the sweep's extractor {path} is gone (it was "
                        f"launched elsewhere, e.g. as a Ray Job): pass --feature-extractor FILE "
                        f"with the same bytes (sha256 "
                        f"{(record.feature_extractor_sha256 or '')[:12]})")
    return path


def recorded_store(flag: str | None, recorded: str, option: str, var: str) -> str:
    """The store `resume` uses: the flag, else the launch record's; a recorded URI whose secret
    was masked is taken from the environment variable `var` when that matches it."""
    if flag or MASK not in recorded:  # (a record from before masking holds the URI itself)
        return flag or recorded
    found = os.environ.get(var, "")
    if found and redact_uri(found) == recorded:
        return found
    raise SpecError(f"{option}: the sweep was launched with {recorded}, whose secret gansweep "
                    f"does not keep: set {var} (or pass {option}) to that URI")


def digest(extractor: bytes | None) -> str | None:
    return hashlib.sha256(extractor).hexdigest() if extractor is not None else None


def check_same_extractor(study, extractor: bytes | None) -> None:
    """eval/fid compares trials only in one feature space: a sweep continues with the extractor
    it was launched with (`resume` reads it from the launch record)."""
    found = study.user_attrs.get(LAUNCH_ATTR)
    record = LaunchRecord.from_dict(found) if found else None
    if record is None or not record.extractor_recorded or not study.trials:
        return  # a new sweep, or one launched before the extractor was recorded
    was, now = record.feature_extractor_sha256, digest(extractor)
    if was != now:
        launched = (f"with --feature-extractor {record.feature_extractor} (sha256 {was[:12]})"
                    if was else "without --feature-extractor")
        given = f"sha256 {now[:12]}" if now else "none"
        raise SpecError(f"--feature-extractor: sweep {study.study_name!r} was launched "
                        f"{launched}, given {given}: eval/fid must be in one feature space; "
                        f"pass the same file, or use `gansweep resume {study.study_name}`")


def existing_study(name: str, storage: str):
    """Sweep `name`'s study in `storage`, or None when it has none yet; asked before anything
    is created (a storage file that does not exist is not made)."""
    import optuna

    from orchestrator.study.studies import open_storage

    file = local_file(storage)
    if file is not None and not file.exists():
        return None
    try:
        return optuna.load_study(study_name=name, storage=open_storage(storage))
    except KeyError:  # no such study yet
        return None


def check_same_spec(study, spec: SweepSpec, allowed: bool) -> str | None:
    """A sweep continues with the spec it was launched with, in the fields that decide what its
    trials mean (orchestrator/spec/changes.py): a change is refused, naming the first field
    that differs, unless `allowed` (--allow-changed-spec); then the change is returned, to be
    said."""
    from orchestrator.spec.changes import first_change

    found = study.user_attrs.get(LAUNCH_ATTR)
    if not found or not study.trials:
        return None
    record = LaunchRecord.from_dict(found)
    try:
        launched = record.sweep_spec()
    except SpecError as exc:  # e.g. its plug-in is gone: not the spec given now, then
        change: tuple[str, str] | None = ("spec", f"the one launched no longer loads ({exc})")
    else:
        change = first_change(launched, spec)
    if change is None:
        return None
    field, how = change
    if allowed:
        return f"{field}: {how}"
    source = Path(spec.path).name or spec.name
    raise SpecError(f"{source}: {field}: {how} since sweep {spec.name!r} was launched, and its "
                    f"{len(study.trials)} trial(s) came from that spec: launch with "
                    f"--allow-changed-spec to continue anyway, or rename the sweep")
