"""Promoting a sweep's chosen generator to the MLflow Model Registry, with its provenance.

Two questions, kept apart. *Which* trial, and why, is a `Choice` that
orchestrator/study/ranking.py makes from the study (`champion`: the config `gansweep confirm`
trusts most, else the best trial, or with `--pick` the Pareto point best on one metric). *How*
it is registered is `promote_choice`: the trial run's logged generator (`trial-0007-best`, its
best evaluation, or `trial-0007-last`, its last step: tag `gansweep.at`; runs logged before
that named them `generator_best` and `generator`) becomes a version of the registered model
(whose description says which version is champion and why),
linked both ways: the version's source `models:/<model_id>` (and `model_id`, where the store
keeps it), and the logged model's `mlflow.modelVersions` tag, which MLflow's UI reads to show
the registration (MLflow's server and `register_model` write it, `create_model_version` on a
local store does not). The version is described and tagged with sweep, trial, run, objective,
value, storage and rule. Alias `champion` points at it; the run is tagged
`gansweep.champion=true` and the run that lost the alias `false`, and the version records which
version it replaced. Promoting again changes nothing unless the choice changed.
"""

from __future__ import annotations

import json
import reprlib
from dataclasses import dataclass

import optuna
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from orchestrator.errors import SpecError
from orchestrator.layout import (
    ALIAS,
    AT_BEST,
    AT_LAST,
    BEST_MODEL_NAME,
    MODEL_NAME,
    MODEL_VERSIONS_TAG,
    TAG_BEST_STEP,
    TAG_BEST_VALUE,
    TAG_CHAMPION,
    TAG_MODEL_AT,
    TAG_SWEEP,
    TAG_TRIAL,
    VERSION_DIRECTION,
    VERSION_GENERATOR,
    VERSION_OBJECTIVE,
    VERSION_REPLACED,
    VERSION_REPLACED_VALUE,
    VERSION_RULE,
    VERSION_RUN,
    VERSION_STORAGE,
    VERSION_VALUE,
)
from orchestrator.stores.redact import redact_uri
from orchestrator.study.ranking import Choice, champion

# --at -> the name a run logged that generator under before generators were named after their
# trial and tagged `gansweep.at` (such runs are still promoted)
LEGACY_NAME = {AT_BEST: BEST_MODEL_NAME, AT_LAST: MODEL_NAME}


@dataclass(frozen=True)
class Replaced:
    """The version that was champion before this promotion."""

    version: str
    run_id: str | None
    trial: str | None
    value: str | None


@dataclass(frozen=True)
class Promotion:
    model_name: str
    version: str
    choice: Choice
    generator: str  # the run's logged model that was registered
    fell_back: bool  # --at best, but the run has no best generator: its last generator
    created: bool
    alias_moved: bool
    replaced: Replaced | None  # the champion before, when the alias moved away from one

    @property
    def run_id(self) -> str:
        return self.choice.run_id

    @property
    def trial(self) -> int:
        return self.choice.trial


def check_model_name(model_name: str) -> None:
    """A registered model name MLflow's search filters can hold: no quotes, no control
    characters (the filter is a quoted string), at most 200 characters."""
    bad = [c for c in model_name if c in "'\"\\" or not c.isprintable()]
    if not model_name.strip() or bad or len(model_name) > 200:
        why = f"must not contain {bad[0]!r}" if bad else "must be 1 to 200 printable characters"
        raise SpecError(f"--model-name: {why}, got {reprlib.repr(model_name)}")


def promote(study: optuna.Study, tracking_uri: str, model_name: str, pick: str | None = None,
            at: str = "best", storage: str | None = None,
            confirm: optuna.Study | None = None) -> Promotion:
    """Promote the sweep's champion (orchestrator/study/ranking.py): the config its confirm
    study (`gansweep confirm`'s, when it ran) found most trustworthy, unless --pick was given,
    else its best trial. `storage`, the study's, is written into the version's description."""
    check_model_name(model_name)
    return promote_choice(champion(study, confirm, pick), tracking_uri, model_name, at, storage)


def promote_choice(choice: Choice, tracking_uri: str, model_name: str, at: str = "best",
                   storage: str | None = None) -> Promotion:
    """Register `choice`'s generator (`at`: best | last) as a version of `model_name`, or find
    it registered, and point alias `champion` at it. `storage` (the study's, redacted here) is
    written into the version's description."""
    import mlflow

    check_model_name(model_name)
    # the registry store resolves `models:/m-...` sources through the process-wide tracking URI
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    logged, found_at, fell_back = logged_generator(client, choice.run_id, at)
    version = _registered_version(client, model_name, logged.model_id)
    created = version is None
    if created:
        version = _register(client, model_name, choice, logged)
    _link(client, logged.model_id, model_name, version)  # also mends versions made before
    before = _alias_version(client, model_name)
    replaced = None if before in (None, version) else _replaced(client, model_name, before)
    if created or before != version:
        _describe(client, model_name, version,
                  _Facts(choice, logged, found_at, fell_back, storage),
                  replaced)
    if before != version:
        client.set_registered_model_alias(model_name, ALIAS, version)
    if before != version or not client.get_registered_model(model_name).description:
        client.update_registered_model(model_name, model_description(model_name, version, choice))
    _mark_champion(client, choice.run_id, replaced)
    return Promotion(model_name, version, choice, logged.name, fell_back, created,
                     before != version, replaced)


@dataclass(frozen=True)
class _Facts:
    choice: Choice
    logged: object  # mlflow.entities.LoggedModel
    at: str  # which of the run's generators it is: best | last
    fell_back: bool
    storage: str | None


def logged_generator(client: MlflowClient, run_id: str, at: str):
    """The run's logged generator for `at`, which one it is, and whether `best` fell back to
    the last generator (a run logged before trials kept their best evaluation's generator)."""
    if at not in LEGACY_NAME:
        raise SpecError(f"--at: must be one of {', '.join(LEGACY_NAME)}, got {at!r}")
    run = client.get_run(run_id)
    for want in [at] + ([AT_LAST] if at == AT_BEST else []):
        for which in (f"tags.`{TAG_MODEL_AT}` = '{want}'", f"name = '{LEGACY_NAME[want]}'"):
            found = client.search_logged_models(
                experiment_ids=[run.info.experiment_id],
                filter_string=f"source_run_id = '{run_id}' AND {which}")
            if found:
                return found[0], want, want != at
    wanted = " or ".join([at] + ([AT_LAST] if at == AT_BEST else []))
    raise SpecError(f"run {run_id} has no logged {wanted} generator to promote "
                    f"(did the trial complete?)")


def model_description(model_name: str, version: str, choice: Choice) -> str:
    """The registered model's description (MLflow's registry page shows it): what its versions
    are, which one is champion and why, how to load it."""
    return (f"GAN generators registered by `gansweep promote`: each version is one trial's "
            f"generator; its tags and description say which sweep, trial, run and score.\n\n"
            f"Alias `{ALIAS}`: version {version}, sweep {choice.sweep}, trial {choice.trial}, "
            f"{choice.metric} = {choice.value:.6g} ({choice.direction}), chosen by "
            f"{choice.rule}.\n\n"
            f"Load it: `mlflow.pytorch.load_model('models:/{model_name}@{ALIAS}')`, or "
            f"`gansweep sample models:/{model_name}@{ALIAS} -n 64 -o samples.png`.")


def _registered_version(client: MlflowClient, model_name: str, model_id: str) -> str | None:
    """The version of `model_name` already registered from logged model `model_id`."""
    try:
        client.get_registered_model(model_name)
    except MlflowException:
        return None
    versions = client.search_model_versions(f"name = '{model_name}'")
    return next((str(v.version) for v in versions if version_model_id(v) == model_id), None)


def version_model_id(version) -> str | None:
    """The logged model a registered version was made from. MLflow's SQL registry stores do not
    keep `model_id` (None when read back); the version's source `models:/<model_id>` holds it."""
    source = version.source or ""
    return version.model_id or (source[len("models:/"):] if source.startswith("models:/m-")
                                else None)


def _register(client: MlflowClient, model_name: str, choice: Choice, logged) -> str:
    try:
        client.get_registered_model(model_name)
    except MlflowException:
        client.create_registered_model(model_name, tags={TAG_SWEEP: choice.sweep})
    version = client.create_model_version(model_name, source=logged.model_uri,
                                          run_id=choice.run_id, model_id=logged.model_id)
    return str(version.version)


def _link(client: MlflowClient, model_id: str, model_name: str, version: str) -> None:
    """List the version on its logged model (the tag MLflow's UI reads to show "Registered"),
    as MLflow's server and `mlflow.register_model` do; kept if already there."""
    tags = client.get_logged_model(model_id).tags
    listed = json.loads(tags.get(MODEL_VERSIONS_TAG) or "[]")
    entry = {"name": model_name, "version": version}
    if entry not in listed:
        client.set_logged_model_tags(model_id, {MODEL_VERSIONS_TAG: json.dumps(listed + [entry])})


def _describe(client: MlflowClient, model_name: str, version: str, facts: _Facts,
              replaced: Replaced | None) -> None:
    """The version's description and tags: what was promoted, from where, and why."""
    choice, run_tags = facts.choice, client.get_run(facts.choice.run_id).data.tags
    tags = {TAG_SWEEP: choice.sweep, TAG_TRIAL: str(choice.trial), VERSION_RUN: choice.run_id,
            VERSION_OBJECTIVE: choice.metric, VERSION_DIRECTION: choice.direction,
            VERSION_VALUE: repr(choice.value), VERSION_RULE: choice.rule,
            VERSION_GENERATOR: facts.logged.name}
    if facts.storage:
        tags[VERSION_STORAGE] = redact_uri(facts.storage)
    lines = [f"Sweep {choice.sweep}, trial {choice.trial} (run {choice.run_id}): "
             f"{choice.metric} = {choice.value:.6g} ({choice.direction}).",
             f"Chosen by: {choice.rule}.", f"Generator: {_generator_words(facts, run_tags)}."]
    if facts.storage:
        lines.append(f"Optuna storage: {redact_uri(facts.storage)}.")
    if replaced is not None:
        tags.update({VERSION_REPLACED: replaced.version,
                     VERSION_REPLACED_VALUE: replaced.value or ""})
        lines.append(f"Replaced version {replaced.version} as {ALIAS} (trial {replaced.trial}, "
                     f"{choice.metric} = {replaced.value or 'not recorded'}).")
    for key, value in tags.items():
        client.set_model_version_tag(model_name, version, key, value)
    client.update_model_version(model_name, version, description="\n".join(lines))


def _generator_words(facts: _Facts, run_tags: dict[str, str]) -> str:
    name = facts.logged.name
    if facts.fell_back:
        return (f"{name}, its last step: the run has no best generator (logged before "
                f"trials kept their best evaluation's generator)")
    if facts.at == AT_BEST:
        step, value = run_tags.get(TAG_BEST_STEP), run_tags.get(TAG_BEST_VALUE)
        where = f" (step {step}, {facts.choice.metric} = {value})" if step else ""
        return f"{name}, its best evaluation{where}"
    return f"{name}, its last step"


def _replaced(client: MlflowClient, model_name: str, version: str) -> Replaced:
    found = client.get_model_version(model_name, version)
    return Replaced(version, found.run_id, found.tags.get(TAG_TRIAL), found.tags.get(VERSION_VALUE))


def _mark_champion(client: MlflowClient, run_id: str, replaced: Replaced | None) -> None:
    client.set_tag(run_id, TAG_CHAMPION, "true")
    if replaced is not None and replaced.run_id and replaced.run_id != run_id:
        client.set_tag(replaced.run_id, TAG_CHAMPION, "false")


def _alias_version(client: MlflowClient, model_name: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(model_name, ALIAS).version)
    except MlflowException:
        return None
