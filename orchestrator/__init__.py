"""gansweep's orchestration: everything between a sweep spec and a promoted generator (the GANs
themselves are trainers/, pure PyTorch). One package per concept, each importing only what
stands above it in this list (tests/orchestrator/test_import_graph.py):

  errors.py    SpecError / FieldError: bad input, one line naming file and field (imports nothing)
  boundary.py  what crosses to a trial actor: TrialSpec, ChunkResult, run states, ActorLost,
               what an actor preloads (the standard library only)
  layout.py    what gansweep writes where, every name once: MLflow tags, metrics, artifacts and
               models, Optuna study and trial attributes (imports nothing)
  stores/      where things live: URIs, Settings, checks before anything is made, redaction,
               checkpoint roots, a moved MLflow store's relocation
  spec/        the YAML spec as frozen dataclasses (space, search, budget); Optuna only to check
               a named pruner's options
  study/       everything Optuna: the study, sampler and params, the launch record, results, the
               ranking ("which trial is best", "which config to trust")
  tracking/    everything MLflow on the driver: the tracker, a run's entities, the sweep's page
               and report, the UI
  actor/       inside a trial actor: the worker, its run logger and model exporter, checkpoints
  cluster/     Ray: starting or joining it, the actor pool, plug-ins shipped, tokens, Ray Jobs
  driver/      one sweep's driver: launch, the scheduler's loop, decide (pure), trials, lease,
               data, the confirm phase (the top configs on fresh seeds, when the search ends)
  registry/    after a sweep: `gansweep confirm` (more configs or seeds), promote to the Model
               Registry, sample
  cli/         the `gansweep` commands: flags in, lines out, exit codes

One trial's path: cli/sweep.py `launch` -> driver/launch.py (stores/checks, cluster/raystart
starts Ray and the actors, tracking/tracker the parent run, study/studies the study) ->
driver/scheduler.py asks driver/trials.py for a trial (Optuna's params, its MLflow run) and
sends its boundary.TrialSpec to an actor of cluster/pool.py -> actor/worker.py trains chunks,
logs through actor/runlog.py, checkpoints through actor/checkpoints.py, answers ChunkResults ->
driver/decide.py says what follows (report, prune, complete, fail, retry) -> trials.tell ends it
in Optuna; the actor closes its run -> registry/promote.py registers the champion that
study/ranking.py names.
"""
