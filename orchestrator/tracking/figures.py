"""The sweep page's pictures: Optuna's interactive figures in one HTML file (with, for one
objective, the expected best vs trials: would more trials help?), and a contact sheet of the
best trials' latest samples.

`figures_html` writes every figure into ONE self-contained file, `optuna/figures.html`, with
plotly.js inlined once (~4.7 MB): MLflow's artifact viewer shows it offline (its iframe allows
scripts; a CDN link would need the internet, which a cluster may not have), and one file per
figure would carry plotly.js four times over. Each figure is best-effort: one Optuna cannot draw
is replaced by a line saying why, never an error.
"""

from __future__ import annotations

import html
import io
import logging
import warnings
from collections.abc import Callable

import optuna
from optuna.trial import FrozenTrial, TrialState
from optuna.visualization import (
    plot_contour,
    plot_optimization_history,
    plot_parallel_coordinate,
    plot_param_importances,
    plot_slice,
)
from PIL import Image, ImageDraw, ImageFont

from orchestrator.study.expected import (
    ASSUMES,
    SHOWN_FROM,
    best_so_far,
    complete_values,
    shown,
)

log = logging.getLogger(__name__)
# "one in ten": a regression needs ~10 observations per predictor before its attributions mean
# much; below that, importances move from one trial to the next
TRIALS_PER_PARAM = 10
CONTOUR_PARAMS = 4  # contour draws every pair: 4 params make 6 panels, 10 would make 45
TILE_HEIGHT = 256  # px of one trial's samples on the contact sheet
SHEET_WIDTH = 800  # px at most: a run's description column in a 1280 px window
LABEL_HEIGHT = 22
GAP = 6
EXPECTED_TITLE = "Expected best vs trials"


# -- interactive figures ------------------------------------------------------------------------
def figures_html(study: optuna.Study, objective: str, title: str) -> bytes | None:
    """One HTML page of Optuna's figures for `objective` (the first of several objectives), or
    None before the first complete trial."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not done:
        return None
    target = _target(study)
    varied = varied_params(done)
    importances = _importances(study, target, varied)
    sections = [_section(name, make) for name, make in _figures(
        study, objective, target, varied, importances, len(done)).items()]
    from plotly.offline import get_plotlyjs

    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><script>{get_plotlyjs()}</script></head><body style='font-family:sans-"
            f"serif'><h2>{html.escape(title)}</h2>{''.join(sections)}</body></html>")
    return page.encode()


def _figures(study: optuna.Study, objective: str, target, varied: list[str],
             importances: dict[str, float] | None, n_done: int) -> dict[str, Callable]:
    """Figure title -> a function drawing it (a plotly figure)."""
    kw = {"target": target, "target_name": objective}
    figures: dict[str, Callable] = {
        "History": lambda: plot_optimization_history(study, **kw),
        "Parallel coordinates": lambda: plot_parallel_coordinate(study, params=varied, **kw),
        "Slice": lambda: plot_slice(study, params=varied, **kw)}
    ranked = list(importances) if importances else varied
    if len(varied) >= 2:
        figures["Contour"] = lambda: plot_contour(study, params=ranked[:CONTOUR_PARAMS], **kw)
    if importances:
        warning = importance_warning(n_done, len(varied))
        figures["Importances"] = lambda: _warned(plot_param_importances(
            study, evaluator=_known(importances), **kw), warning)
    trials = study.get_trials(deepcopy=False)
    if len(study.directions) == 1 and len(complete_values(trials)) >= SHOWN_FROM:
        maximize = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
        figures[EXPECTED_TITLE] = lambda: expected_best_figure(trials, objective, maximize)
    return figures


def expected_best_figure(trials: list[FrozenTrial], objective: str, maximize: bool):
    """Would more trials help? The expected best of n trials up to N and past it (a band per
    part: orchestrator/study/expected.py says what each means) beside this sweep's best so
    far, complete trial by complete trial."""
    import plotly.graph_objects as go

    found, figure = shown(trials, objective, maximize), go.Figure()
    so_far = best_so_far(complete_values(trials), maximize)
    parts = ((found.sweep, "a sweep of n trials (Dodge et al.), 90% bootstrap band", "31,119,180"),
             (found.more, "this sweep with n - N more, 90% prediction band", "255,127,14"))
    for part, name, rgb in parts:
        x = [int(n) for n in part.trials]
        figure.add_trace(go.Scatter(x=x + x[::-1], y=[*part.high, *part.low[::-1]],
                                    fill="toself", fillcolor=f"rgba({rgb},0.2)",
                                    line={"width": 0}, hoverinfo="skip", showlegend=False))
        figure.add_trace(go.Scatter(x=x, y=list(part.mean), mode="lines", name=name,
                                    line={"color": f"rgb({rgb})"}))
    figure.add_trace(go.Scatter(x=list(range(1, len(so_far) + 1)), y=list(so_far),
                                mode="markers", name="this sweep's best so far",
                                marker={"color": "black", "size": 5}))
    figure.update_layout(xaxis_title="complete trials (n)",
                         yaxis_title=f"expected best {objective}", legend={"x": 0, "y": -0.25,
                                                                          "orientation": "h"})
    return _warned(figure, ASSUMES)


def _section(name: str, make: Callable) -> str:
    """One figure as an HTML fragment (no plotly.js: the page has it once), or why not."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental / target-direction reminders
            figure = make()
        body = figure.to_html(full_html=False, include_plotlyjs=False)
    except Exception as exc:  # a page must never fail the sweep
        log.warning("sweep page: skipped figure %s: %s: %s", name, type(exc).__name__, exc)
        body = f"<p>not drawn: {html.escape(type(exc).__name__)}: {html.escape(str(exc))}</p>"
    return f"<h3>{html.escape(name)}</h3>{body}"


def _target(study: optuna.Study) -> Callable[[FrozenTrial], float] | None:
    """Several objectives: the first one, as lower-is-better (the importance evaluator assumes
    so when given a target). One objective: None, Optuna reads the study's direction."""
    if len(study.directions) == 1:
        return None
    sign = -1.0 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else 1.0
    return lambda t: sign * t.values[0]


def varied_params(done: list[FrozenTrial]) -> list[str]:
    """Params that took more than one value among the complete trials, in first-seen order: a
    constant one has nothing to show."""
    names = list(dict.fromkeys(name for t in done for name in t.params))
    return [n for n in names if len({repr(t.params.get(n)) for t in done}) > 1]


def _importances(study: optuna.Study, target, varied: list[str]) -> dict[str, float] | None:
    """Importances, most important first, computed once (the contour picks its params by
    them); None when there are fewer than 2 varied params or 2 complete trials."""
    if len(varied) < 2 or len(study.get_trials(deepcopy=False,
                                               states=(TrialState.COMPLETE,))) < 2:
        return None
    from optuna.importance import get_param_importances  # imports scikit-learn: 2 s

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return get_param_importances(study, params=varied, target=target)
    except Exception as exc:
        log.warning("sweep page: no importances: %s: %s", type(exc).__name__, exc)
        return None


def importance_warning(n_done: int, n_params: int) -> str | None:
    """What the importance figure says when too few trials make it noise."""
    if n_done >= TRIALS_PER_PARAM * n_params:
        return None
    return (f"Only {n_done} complete trials for {n_params} parameters: importances are noise "
            f"below ~{TRIALS_PER_PARAM} per parameter ({TRIALS_PER_PARAM * n_params})")


def _warned(figure, warning: str | None):
    if warning:
        figure.add_annotation(text=f"⚠ {warning}", xref="paper", yref="paper", x=0.5, y=1.08,
                              showarrow=False, font={"color": "#b00020"})
    return figure


def _known(importances: dict[str, float]):
    """An evaluator of importances already computed: the figure shows them, not new ones."""
    from optuna.importance import BaseImportanceEvaluator

    class Known(BaseImportanceEvaluator):
        def evaluate(self, study, params=None, *, target=None) -> dict[str, float]:
            return dict(importances)

    return Known()


# -- contact sheet ------------------------------------------------------------------------------
def contact_sheet(tiles: list[tuple[str, bytes]], width: int = SHEET_WIDTH) -> bytes | None:
    """The (label, PNG) tiles in rows, each scaled to TILE_HEIGHT under its label, a row wrapped
    before it would pass `width` px (a run's description is shown at its natural size: wider, it
    pushes the run page's About panel off a 1280 px window), as PNG; None when no tile is an
    image Pillow can read."""
    images = [(label, img) for label, data in tiles if (img := _image(label, data))]
    if not images:
        return None
    rows: list[list[tuple[str, Image.Image]]] = [[]]
    for label, img in images:
        used = sum(i.width + GAP for _, i in rows[-1]) + GAP
        if rows[-1] and used + img.width + GAP > width:
            rows.append([])
        rows[-1].append((label, img))
    row_height = TILE_HEIGHT + LABEL_HEIGHT + GAP
    sheet_width = max(sum(i.width + GAP for _, i in row) + GAP for row in rows)
    sheet = Image.new("RGB", (sheet_width, len(rows) * row_height + GAP), "white")
    draw, font = ImageDraw.Draw(sheet), ImageFont.load_default(size=14)
    for r, row in enumerate(rows):
        x, y = GAP, GAP + r * row_height
        for label, img in row:
            draw.text((x, y), label, fill="black", font=font)
            sheet.paste(img, (x, y + LABEL_HEIGHT))
            x += img.width + GAP
    buf = io.BytesIO()
    sheet.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _image(label: str, data: bytes) -> Image.Image | None:
    """One tile at TILE_HEIGHT (aspect kept, at most 3 tiles wide), or None if unreadable."""
    try:
        img = Image.open(io.BytesIO(data)).convert("RGB")
    except Exception as exc:
        log.warning("sweep page: %s: samples.png unreadable: %s", label, exc)
        return None
    width = min(3 * TILE_HEIGHT, max(1, round(img.width * TILE_HEIGHT / img.height)))
    return img.resize((width, TILE_HEIGHT), Image.Resampling.LANCZOS)
