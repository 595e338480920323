"""The sweep page's pictures: the contact sheet of the best trials' samples, and when the
importance figure says it is noise."""

from __future__ import annotations

import io

from PIL import Image

from orchestrator.tracking.figures import (
    GAP,
    LABEL_HEIGHT,
    TILE_HEIGHT,
    contact_sheet,
    importance_warning,
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
