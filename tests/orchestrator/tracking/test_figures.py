"""The sweep page's pictures: the contact sheet of the best trials' samples, and when the
importance figure says it is noise."""

from __future__ import annotations

import io

import pytest
from optuna.trial import TrialState, create_trial
from PIL import Image

from orchestrator.layout import PBT_LINEAGE_ATTR, PBT_PARAMS_ATTR, PBT_SCHEDULE_ATTR
from orchestrator.tracking.figures import (
    GAP,
    LABEL_HEIGHT,
    TILE_HEIGHT,
    contact_sheet,
    importance_warning,
    lineage_figure,
    step_ranks,
    varied_params,
)


def _png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 30)).save(buf, format="PNG")
    return buf.getvalue()


def test_the_contact_sheet_puts_each_readable_tile_side_by_side_at_one_height():
    sheet = contact_sheet([("#1", _png(40, 40)), ("broken", b"not a png"), ("#2", _png(80, 40))])
    image = Image.open(io.BytesIO(sheet))
    assert image.height == TILE_HEIGHT + LABEL_HEIGHT + 2 * GAP
    assert image.width == 3 * GAP + TILE_HEIGHT + 2 * TILE_HEIGHT  # square, then twice as wide
    assert contact_sheet([("broken", b"x")]) is None


def test_importances_warn_below_ten_trials_per_parameter():
    assert importance_warning(19, 2) is not None and "19 complete trials" in importance_warning(
        19, 2)
    assert importance_warning(20, 2) is None


def test_only_params_that_took_several_values_are_drawn():
    import optuna
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import create_trial

    dists = {"a": CategoricalDistribution([1, 2]), "b": CategoricalDistribution([1, 2])}
    done = [create_trial(value=1.0, params={"a": a, "b": 1}, distributions=dists) for a in (1, 2)]
    assert varied_params(done) == ["a"] and isinstance(done[0], optuna.trial.FrozenTrial)


def _member(number: int, reports: dict[int, float], lineage: list, state=TrialState.COMPLETE):
    """A PBT member as its driver leaves it: its params now, its schedule and its exploits."""
    trial = create_trial(state=state, value=min(reports.values(), default=0.0) if state ==
                         TrialState.COMPLETE else None, intermediate_values=reports,
                         user_attrs={PBT_PARAMS_ATTR: {"lr_g": 1e-4},
                                     PBT_SCHEDULE_ATTR: [[0, {"lr_g": 1e-4}]],
                                     PBT_LINEAGE_ATTR: lineage})
    trial.number = number
    return trial


def _population(n: int) -> list:
    """n members of 1000 steps evaluated every 100, a round every 250: member i reports
    (i + 1) / step, the last quarter copies the first at each round."""
    members = []
    for i in range(n):
        lineage = [[step, i - 3 * n // 4] for step in (250, 500, 750)] if i >= 3 * n // 4 else []
        members.append(_member(i, {s: (i + 1) / s for s in range(100, 1001, 100)}, lineage,
                               TrialState.RUNNING if i == 1 else TrialState.COMPLETE))
    return members


def test_the_lineage_figure_is_a_png_that_fits_the_page_and_grows_a_lane_per_member():
    images = {n: Image.open(io.BytesIO(lineage_figure(_population(n), 250, 1000,
                                                      "eval/reverse_kl", maximize=False)))
              for n in (4, 8, 16)}
    for image in images.values():
        assert image.format == "PNG" and 600 <= image.width <= 820  # the description's column
    assert images[16].height - images[8].height >= 8 * 24  # about 30 px a lane
    assert images[8].height > images[4].height


def test_no_lineage_figure_without_a_member():
    plain = create_trial(value=1.0, intermediate_values={100: 2.0})
    assert lineage_figure([plain], 250, 1000, "eval/loss", maximize=False) is None
    assert lineage_figure([], 250, 1000, "eval/loss", maximize=False) is None


def test_a_member_without_reports_yet_is_drawn_as_an_empty_lane():
    members = [_member(0, {}, [], TrialState.RUNNING), _member(1, {}, [], TrialState.RUNNING)]
    assert Image.open(io.BytesIO(lineage_figure(members, 250, 1000, "eval/loss", False)))


@pytest.mark.parametrize("maximize, ranks", [
    (False, {(0, 100): 0.0, (1, 100): 0.5, (2, 100): 1.0, (0, 200): 1.0, (2, 200): 0.0}),
    (True, {(0, 100): 1.0, (1, 100): 0.5, (2, 100): 0.0, (0, 200): 0.0, (2, 200): 1.0}),
])
def test_lanes_are_coloured_by_rank_among_the_members_evaluated_at_the_same_step(maximize,
                                                                                 ranks):
    """0 is the best in the objective's direction; a member that has not reported at a step
    (1 at 200), or reported a value that is not finite (2 at 300), is not ranked there."""
    members = [_member(0, {100: 1.0, 200: 9.0}, []), _member(1, {100: 2.0}, []),
               _member(2, {100: 3.0, 200: 0.5, 300: float("nan")}, [])]
    assert step_ranks(members, maximize) == ranks
