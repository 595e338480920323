"""Population-based training on the sweep loop: `scheduler: {name: pbt, ...}` in the spec.

Each member is one Optuna trial and one MLflow run, for its whole life. The sampler draws its
first params (the trial's params); the params it trains with later are the trial's attribute
PBT_PARAMS_ATTR, and the schedule its state was trained under (its donors' schedules up to each
exploit, then its own) is PBT_SCHEDULE_ATTR: what `confirm` replays on fresh seeds. A member
reports its objective at every evaluation and is told its final value when it reaches
`budget.steps`, so `status`, `best` and `promote` read a PBT sweep as any other: the champion is
the final state of the best member.

Rounds are synchronous. A member that reaches the next round's step (a multiple of
`scheduler.interval`) waits there, checkpointed; it hands its actor to a member that still has
to get there, when one waits for an actor. Once every live member is at the round, `plan_round`
(pbt.py, pure) says who copies whom; the round is kept on the study (PBT_PLAN_ATTR) before
anything is copied, the donors' checkpoints at that step are copied as the recipients' newest
(a task beside the driver), each exploit is written to the recipient's run (pbt/donor at that
step; its actor logs hp/NAME as it starts) and trial, and PBT_ROUND_ATTR marks the round done.
Then every member goes on: a recipient restarts from its copied checkpoint with its new params.

Faults: a lost actor's member resumes from its last checkpoint and goes on to the round; a
member that diverges waits at the round without a score and copies a donor there (it is left
dead, FAIL, only when no member has a score); a killed driver's members are resumed by the
next: those at a round not yet applied wait there again, and a round kept on the study but not
finished is applied as it was planned.
"""

from __future__ import annotations

import dataclasses

from optuna.trial import TrialState

from orchestrator.boundary import DIVERGED, FAIL
from orchestrator.driver.context import SweepContext
from orchestrator.driver.decide import Action, Outcome
from orchestrator.driver.pbt import Exploit, Member, plan_round, round_rng
from orchestrator.driver.scheduler import Scheduler
from orchestrator.driver.trials import Active
from orchestrator.layout import (
    DONOR_METRIC,
    PBT_LINEAGE_ATTR,
    PBT_PARAMS_ATTR,
    PBT_PLAN_ATTR,
    PBT_ROUND_ATTR,
    PBT_SCHEDULE_ATTR,
)
from orchestrator.spec.health import HealthSpec


class PopulationScheduler(Scheduler):
    def __init__(self, ctx: SweepContext, pool):
        # members are replaced by exploit, not pruned: the health rules stay off
        ctx = dataclasses.replace(ctx, spec=dataclasses.replace(ctx.spec,
                                                                health=HealthSpec.off()))
        super().__init__(ctx, pool)
        self.pbt = self.spec.scheduler
        self.interval = self.pbt.interval
        self.at_round: dict[int, Active] = {}  # members waiting at the round, by trial number
        self.scores: dict[int, float | None] = {}  # their objective at the round (None: diverged)
        self.round_done = int(self.study.user_attrs.get(PBT_ROUND_ATTR, 0))
        for active in list(self.waiting):  # left by an earlier driver: as they trained
            active.spec = self._member_spec(active.trial, active.spec)
            reported = self.study.get_trials(deepcopy=False)[
                active.trial.number].intermediate_values
            step = max(reported, default=0)
            if self._at_round(step):  # at a round not applied yet: it waits there
                self.waiting.remove(active)
                active.step = step
                self._arrive(active, reported[step])
        self.stats.exploits = sum(len(t.user_attrs.get(PBT_LINEAGE_ATTR, []))
                                  for t in self.study.get_trials(deepcopy=False))

    # -- members ------------------------------------------------------------------------------
    def _ask(self) -> Active:
        active = super()._ask()
        trial = active.trial
        params = dict(active.spec.params)
        trial.set_user_attr(PBT_PARAMS_ATTR, params)
        trial.set_user_attr(PBT_SCHEDULE_ATTR, [[0, params]])
        active.spec = self._member_spec(trial, active.spec)
        return active

    def _member_spec(self, trial, spec):
        """A member's `TrialSpec`: the params it trains with now (its first ones on its run)."""
        current = trial.user_attrs.get(PBT_PARAMS_ATTR) or spec.params
        return dataclasses.replace(spec, params=dict(current), first_params=dict(spec.params),
                                   mutable=self.pbt.mutable)

    def _at_round(self, step: int | None) -> bool:
        """A member at `step` has reached the next round (a member resumed from a checkpoint
        its driver never heard of may be a chunk past it: it takes part with that state)."""
        return step is not None and self.round_done + self.interval <= step < \
            self.spec.budget.steps

    def _live(self) -> int:
        """Members not ended: asked, or still to be asked."""
        ended = sum(t.state in (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
                    for t in self.study.get_trials(deepcopy=False))
        return self.spec.budget.trials - ended

    def _conclude(self, active: Active, outcome: Outcome) -> None:
        """A member ended (an error, a lost actor too often): the others may all be at the
        round now."""
        super()._conclude(active, outcome)
        self._resolve_if_all_there()

    def _requeue(self, active: Active, what: str) -> None:
        """A member whose actor died waits to resume: it takes the actor of a member waiting
        at the round, if one holds one, instead of one that may never be placed."""
        super()._requeue(active, what)
        holder = next((a for a in self.at_round.values() if a.worker is not None), None)
        if holder is not None:
            worker, holder.worker = holder.worker, None
            self.stats.running -= 1
            self._release(worker)
            ready, replacement = self.pool.new_actor()  # the pool keeps its size, if it can
            self.workers.append(replacement)
            self.starting[ready] = replacement

    def _unfinished(self) -> list[Active]:
        return super()._unfinished() + list(self.at_round.values())

    def run(self):
        self._resolve_if_all_there()  # every member was at the round when the driver stopped
        try:
            return super().run()
        finally:  # those holding an actor at the round were counted as running
            self.stats.running -= sum(a.worker is not None for a in self.at_round.values())
            self.at_round.clear()

    # -- a chunk came back ----------------------------------------------------------------------
    def _apply(self, active: Active, outcome: Outcome) -> None:
        step = outcome.step
        if outcome.action is Action.FAIL and outcome.reason == DIVERGED and \
                self.round_done + self.interval < self.spec.budget.steps:  # a round is to come
            if self.stop_requested:  # resumed from before it diverged, it copies one then
                return super()._apply(active, Outcome(Action.SUSPEND))
            self.notice(f"trial {active.trial.number}: diverged at step {outcome.diverged_step}; "
                        f"it copies a better member at the next round")
            self.stats.running -= 1
            self._hand_over(active, keep=False)
            return self._arrive(active, None)
        if not self._at_round(step) or outcome.action not in (Action.NEXT_CHUNK,
                                                                Action.SUSPEND):
            return super()._apply(active, outcome)
        last = active.health.points[-1] if active.health.points else None
        value = last.value if last is not None and last.step == step else None
        if value is not None:  # what the round ranks, and a resumed driver reads
            self._report(active, (value, step))
        if outcome.action is Action.SUSPEND:  # stopped at the round: it waits there, resumed
            return super()._apply(active, dataclasses.replace(outcome, report=None))
        self.stats.steps_trained += max(0, step - active.step)
        active.step = step
        self._hand_over(active, keep=True)
        self._arrive(active, value)

    def _hand_over(self, active: Active, keep: bool) -> None:
        """A member waiting at the round keeps its actor unless another member needs one (or
        `keep` is False: the actor goes to the next work at once)."""
        if keep and not self._work_left():
            return
        worker, active.worker = active.worker, None
        if keep:
            self.stats.running -= 1
        self._release(worker)

    def _arrive(self, active: Active, value: float | None) -> None:
        self.at_round[active.trial.number] = active
        self.scores[active.trial.number] = value
        self.on_update(self.stats)
        self._resolve_if_all_there()

    # -- a round -----------------------------------------------------------------------------
    def _resolve_if_all_there(self) -> None:
        if not self.at_round or self.stop_requested or len(self.at_round) < self._live():
            return
        step = self.round_done + self.interval
        exploited: dict[int, tuple[Exploit, int]] = {}  # recipient -> (exploit, donor's step)
        for exploit in self._plan(step):
            at = self.at_round[exploit.donor].step  # the round's step, or a chunk past it
            problem = self.pool.get(self.pool.copy_state(
                self.at_round[exploit.recipient].spec, exploit.donor, at))
            if problem:
                self.notice(f"trial {exploit.recipient}: could not copy trial {exploit.donor}'s "
                            f"state at step {at} ({problem}); it goes on with its own")
            else:
                exploited[exploit.recipient] = exploit, at
        for exploit, at in exploited.values():
            self._record(exploit, at)
        self.study.set_user_attr(PBT_ROUND_ATTR, step)  # before any member goes on
        self.round_done = step
        # slowest first: the round's chunks pack onto the actors with the least idle at its end
        members = sorted(self.at_round.values(),
                         key=lambda a: -self.watch.pace.get(a.trial.number, 0.0))
        scores, self.at_round, self.scores = self.scores, {}, {}
        for active in members:
            number = active.trial.number
            if number not in exploited and scores[number] is None:  # diverged, no donor
                self._close(active, FAIL, DIVERGED)
                self._conclude(active, Outcome(Action.FAIL, reason=DIVERGED))
                continue
            exploit, at = exploited.get(number, (None, active.step))
            self._go_on(active, exploit, at)
        if exploited:
            self.notice(f"round at step {step}: " + ", ".join(
                f"trial {e.recipient} <- {e.donor} ({_how(e)})" for e, _ in exploited.values()))
        while self.idle and self.waiting and self._work_left():
            self._release(self.idle.pop())
        self.on_update(self.stats)

    def _plan(self, step: int) -> list[Exploit]:
        """The round's exploits: as kept on the study by a driver that died applying them,
        else decided now (and kept before anything is copied)."""
        kept = self.study.user_attrs.get(PBT_PLAN_ATTR) or {}
        if kept.get("step") == step:  # both members still at the round, neither ended since
            return [Exploit(e["recipient"], e["donor"], e["params"], e.get("how", {}))
                    for e in kept["exploits"]
                    if e["recipient"] in self.at_round and e["donor"] in self.at_round]
        members = [Member(n, self.scores[n], dict(a.spec.params))
                   for n, a in sorted(self.at_round.items())]
        pbt = self.pbt
        plan = plan_round(members, pbt.quantile, self.maximize, self.spec.space, pbt.mutable,
                          pbt.perturb, pbt.resample_probability,
                          round_rng(self.spec.sampler.seed, step))
        self.study.set_user_attr(PBT_PLAN_ATTR, {"step": step, "exploits": [
            dataclasses.asdict(e) for e in plan]})
        return plan

    def _record(self, exploit: Exploit, step: int) -> None:
        """The recipient's trial and run learn of the exploit; its schedule becomes the
        donor's up to this step, then its new params."""
        recipient = self.at_round[exploit.recipient]
        donor = self.study.get_trials(deepcopy=False)[exploit.donor]
        schedule = [entry for entry in donor.user_attrs.get(PBT_SCHEDULE_ATTR, [])
                    if entry[0] <= step] + [[step, exploit.params]]
        trial = recipient.trial
        lineage = list(trial.user_attrs.get(PBT_LINEAGE_ATTR, []))
        if lineage and lineage[-1] == [step, exploit.donor]:  # recorded before its driver died
            return
        lineage.append([step, exploit.donor])
        trial.set_user_attr(PBT_PARAMS_ATTR, exploit.params)
        trial.set_user_attr(PBT_SCHEDULE_ATTR, schedule)
        trial.set_user_attr(PBT_LINEAGE_ATTR, lineage)
        self.tracker.log_trial_metrics(recipient.spec.run_id, {DONOR_METRIC: exploit.donor}, step)
        self.stats.exploits += 1

    def _go_on(self, active: Active, exploit: Exploit | None, step: int) -> None:
        """After the round: a recipient restarts from its copied checkpoint with its new
        params; a member that kept its actor trains on; the others wait for an actor."""
        if exploit is not None:
            active.spec = dataclasses.replace(active.spec, params=dict(exploit.params),
                                              resume=True)
            active.step = step
        else:
            active.spec = dataclasses.replace(active.spec, resume=True)
        if active.worker is None:
            self.waiting.append(active)
        elif exploit is not None:
            self.pool.start(active.worker, active.spec)
            self._next_chunk(active)
        else:
            self._next_chunk(active)



def _how(exploit: Exploit) -> str:
    return ", ".join(f"{name} {how}" for name, how in exploit.how.items()) or "same params"

