"""What gansweep writes where, each name defined once: the MLflow layout (runs, tags, metrics,
artifacts, models, registered versions) and the keys it keeps on Optuna studies and trials.

Imports nothing, so that every package (the study's, the driver's, the actors', the read-only
commands and the UI) takes its names from here without MLflow or Optuna, and none has to import
another's for them. The layout (DESIGN.md, rule 7): experiment =
the spec's `experiment`; one parent run per sweep (role `sweep`), one child run per trial (role
`trial`, run name `trial-0007`, nested through `mlflow.parentRunId`), `gansweep confirm`'s
retrainings as children too (role `confirm`).
"""

from __future__ import annotations

# -- runs ---------------------------------------------------------------------------------------
ROLE_SWEEP, ROLE_TRIAL, ROLE_CONFIRM = "sweep", "trial", "confirm"
TAG_PARENT_RUN = "mlflow.parentRunId"
TAG_NOTE = "mlflow.note.content"  # a run's description in the MLflow UI (markdown)
# a trial's state -> its run's MLflow status when the run ends. A trial stopped by Ctrl-C keeps
# the state RUNNING (resumable) and its run shows KILLED until a resume reopens it.
RUN_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "FINISHED", "FAIL": "FAILED", "RUNNING": "KILLED"}


def trial_run_name(number: int, role: str = ROLE_TRIAL) -> str:
    return f"{role}-{number:04d}"


# a saved view of the runs table, as the UI's "Save view" writes it: an experiment tag
VIEW_TAG = "mlflow.sharedViewState."  # + its key
# the experiment's kind, as MLflow's UI writes it (its ExperimentKindUtils): MLflow versions that
# follow it open the experiment as "Machine learning", on its runs, not on the GenAI overview
# (3.17 does not: its mode is the link's `workflowType`, else the browser's last choice)
EXPERIMENT_KIND_TAG, TRAINING_KIND = "mlflow.experimentKind", "custom_model_development"


def view_key(sweep: str) -> str:
    """The key of the saved view of a sweep's trials (`gansweep ui NAME`)."""
    return f"gansweep-{sweep}"


# -- tags of every run of a sweep -----------------------------------------------------------------
TAG_SWEEP, TAG_ROLE, TAG_TRIAL, TAG_STATE = (
    "gansweep.sweep", "gansweep.role", "gansweep.trial", "gansweep.state")
PROJECT_FILE = "gansweep.toml"  # a project's root, and where its stores are (stores/project.py)
TAG_REASON = "gansweep.reason"  # why a trial failed or stopped
# where a trial runs, set by its actor
TAG_NODE, TAG_GPUS = "gansweep.node", "gansweep.gpu_ids"
TAG_PID, TAG_RAY_NODE = "gansweep.pid", "gansweep.ray_node_id"
TAG_DEVICE = "gansweep.device"  # the torch device a trial trains on: cuda or cpu
TAG_ATTEMPT, TAG_RESUMED_FROM = "gansweep.attempt", "gansweep.resumed_from_step"
TAG_STARTED_AT = "gansweep.started_at"  # unix time the latest attempt began on its actor
TAG_DIVERGED_STEP = "gansweep.diverged_step"
TAG_FINISH_ERROR = "gansweep.finish_error"  # what could not be saved as the run ended
TAG_BEST_STEP, TAG_BEST_VALUE = "gansweep.best_step", "gansweep.best_value"  # generator_best's
TAG_CHAMPION = "gansweep.champion"  # "true" while a registered version of the run is champion
# which network scored an image sweep, on what data: on the parent run and every trial run
TAG_FEATURE_NET, TAG_DATA_HASH = "gansweep.feature_net", "gansweep.dataset_hash"
# a confirm run's: the sweep trial it retrains, and which of its fresh seeds (from the trial's
# attributes CONFIRMS_ATTR and SEED_INDEX_ATTR below)
TAG_CONFIRMS, TAG_SEED_INDEX = "gansweep.confirms_trial", "gansweep.seed_index"

# -- tags of the sweep's parent run ---------------------------------------------------------------
TAG_BEST_RUN = "gansweep.best_run_id"  # the best trial's run, as the page shows it
TAG_BEST_TRIAL = "gansweep.best_trial"  # set when the sweep ends
TAG_BUDGET_TRIALS = "gansweep.budget.trials"  # the last launch's --trials (a param cannot change)
# `gansweep confirm`'s most trustworthy config, its bound, and which evaluation it ranked
TAG_CONFIRMED_TRIAL, TAG_CONFIRMED_BOUND, TAG_CONFIRMED_AT = (
    "gansweep.confirmed_trial", "gansweep.confirmed_bound", "gansweep.confirmed_at")

# -- metrics (besides the trainer's train/ and eval/ ones) ----------------------------------------
MAX_BATCH = 900  # metrics per write: MLflow's log_batch takes at most 1000
PERF_EVAL_S, PERF_CHUNK_S = "perf/eval_s", "perf/chunk_s"  # one eval; a chunk since the last one
SWEEP_BEST_VALUE, SWEEP_COMPLETED = "sweep/best_value", "sweep/completed"  # on the parent run


def floor_metric(eval_metric: str) -> str:
    """The parent run's floor of an eval metric (the data against itself): eval/fd -> floor/fd."""
    return eval_metric.replace("eval/", "floor/", 1)


def role_metric(metric: str, role: str) -> str:
    """A sweep/ progress metric as a confirm writes it on the same parent run: confirm/..."""
    return metric if role == ROLE_TRIAL else metric.replace("sweep/", f"{role}/", 1)


# -- artifacts ----------------------------------------------------------------------------------
# of a trial run
SAMPLES_KEY = "samples"  # the image slider: one picture per eval
SAMPLES_PNG = "samples.png"  # the latest eval's picture, top level (the compare page shows it)
FINAL_SAMPLES, FINAL_CHECKPOINT = "samples/final.png", "checkpoints/final.pt"
TRACEBACK = "errors/traceback.txt"
# of the parent run
SPEC_DIR = "spec"  # spec/<the spec's file name>
SHEET, FIGURES = "contact_sheet.png", "optuna/figures.html"
LINEAGE_PNG = "pbt_lineage.png"  # a PBT sweep's: who copied whom (tracking/figures.py)
TRIALS_CSV = "optuna/trials.csv"
HISTORY_PNG, IMPORTANCES_PNG = "optuna/history.png", "optuna/importances.png"
INTERMEDIATE_PNG, PARETO_PNG = "optuna/intermediate_values.png", "optuna/pareto_front.png"
CONFIRM_TABLE_TXT, CONFIRM_TABLE_CSV = "confirm/table.txt", "confirm/table.csv"


def per_objective(png: str, i: int) -> str:
    """A plot of objective i of several: optuna/history.png -> optuna/history-<i>.png."""
    stem, dot, ext = png.rpartition(".")
    return f"{stem}-{i}{dot}{ext}"


# -- models and the registry ----------------------------------------------------------------------
AT_BEST, AT_LAST = "best", "last"  # a run's two generators: its best evaluation's, its last
TAG_MODEL_AT = "gansweep.at"  # on a logged model: which of its run's generators it is
# the names runs logged their generators under before they were named after their trial
MODEL_NAME, BEST_MODEL_NAME = "generator", "generator_best"


def model_name(run_name: str, at: str) -> str:
    """A logged generator's name, after its run, so that MLflow's Models tab tells trials
    apart: trial-0007-best, trial-0007-last (MLflow refuses `.`, `/`, `:` in the name)."""
    return f"{run_name}-{at}"


ALIAS = "champion"  # the registered version `promote` chose
MODEL_VERSIONS_TAG = "mlflow.modelVersions"  # mlflow.utils.mlflow_tags.MLFLOW_MODEL_VERSIONS
# on a registered version: what was promoted, from where, and why
VERSION_RUN, VERSION_OBJECTIVE = "gansweep.run_id", "gansweep.objective"
VERSION_DIRECTION, VERSION_VALUE = "gansweep.direction", "gansweep.value"
VERSION_RULE, VERSION_STORAGE = "gansweep.rule", "gansweep.storage"
VERSION_GENERATOR = "gansweep.generator"  # which of the run's logged generators it is
VERSION_REPLACED, VERSION_REPLACED_VALUE = "gansweep.replaced_version", "gansweep.replaced_value"

# -- a `gansweep sample` Parquet file's metadata --------------------------------------------------
SAMPLE_SHAPE, SAMPLE_MODEL_URI, SAMPLE_SEED = (
    "gansweep.sample_shape", "gansweep.model_uri", "gansweep.seed")

# -- Optuna: the study's attributes ---------------------------------------------------------------
LAUNCH_ATTR = "gansweep.launch"  # what `gansweep resume NAME` needs (study/record.py)
LEASE_ATTR = "gansweep.driver"  # the driver holding the sweep (driver/lease.py)
CONFIRM_OF_ATTR = "gansweep.confirm_of"  # on a confirm study: the sweep it confirms
CONFIRM_AT_ATTR = "gansweep.confirm_at"  # on a confirm study: --at of its last table
# a PBT sweep's (driver/population.py): the step of the last round applied, and the round being
# applied ({"step", "exploits"}: kept so that a driver resumed mid-round applies the same one)
PBT_ROUND_ATTR, PBT_PLAN_ATTR = "gansweep.pbt.round", "gansweep.pbt.plan"

# -- Optuna: each trial's attributes --------------------------------------------------------------
RUN_ATTR = "mlflow_run_id"
SEED_ATTR = "seed"
REASON_ATTR = "fail_reason"
PRUNED_REASON_ATTR = "gansweep.pruned_reason"  # why it was pruned: a health rule or the pruner
PRUNER = "pruner"  # a pruned reason's first word when an Optuna pruner stopped the trial
ATTEMPT_ATTR = "attempt"  # 1 for the first run of a trial; each resume adds one
DIVERGED_STEP_ATTR = "diverged_step"
# a confirm trial's: the sweep trial it retrains, and which of its fresh seeds
CONFIRMS_ATTR, SEED_INDEX_ATTR = "confirms_trial", "seed_index"
RUN_TAG_OF_ATTR = {CONFIRMS_ATTR: TAG_CONFIRMS, SEED_INDEX_ATTR: TAG_SEED_INDEX}
# a PBT member's: the params it trains with now (the trial's own params are its first), the
# schedule its state was trained under ([[from step, params], ...]: what confirm replays), and
# its exploits ([[step, donor trial], ...])
PBT_PARAMS_ATTR, PBT_SCHEDULE_ATTR = "gansweep.pbt.params", "gansweep.pbt.schedule"
PBT_LINEAGE_ATTR = "gansweep.pbt.lineage"
# a PBT member run's metrics: its mutable params over steps, and the donor of each exploit
HP_PREFIX, DONOR_METRIC = "hp/", "pbt/donor"


def run_tags(attrs: dict) -> dict[str, str]:
    """The MLflow tags a trial's attributes give its run: a confirm trial's source and seed."""
    return {tag: str(attrs[attr]) for attr, tag in RUN_TAG_OF_ATTR.items() if attr in attrs}


def reason_kind(reason: str | None) -> str:
    """A pruned trial's rule, the first word of its reason ("collapse: ...", "pruner: ..."),
    for counting; a trial pruned with no reason recorded was stopped by the pruner."""
    return (reason or PRUNER).split(":", 1)[0]
