"""The sweep page's pictures: Optuna's interactive figures in one HTML file (with, for one
objective, the expected best vs trials: would more trials help?), a contact sheet of the
best trials' latest samples, and a PBT population's lineage (matplotlib, PNG).

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
import math
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
from orchestrator.study.ranking import ranked
from orchestrator.study.results import exploits, is_member

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
LINEAGE_TITLE = "PBT lineage: who copied whom"
LINEAGE_WIDTH_IN, LANE_IN, DPI = 8.0, 0.34, 100  # 800 px wide, as the contact sheet at most
CHAR_WIDTH = 0.012  # of the steps axis, one character of a final value (8 pt) takes about


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


# -- PBT lineage --------------------------------------------------------------------------------
def lineage_figure(trials: list[FrozenTrial], interval: int, steps: int, metric: str,
                   maximize: bool) -> bytes | None:
    """A PBT population's history as PNG: x = step (0..steps), one lane per member (y = its
    trial number) coloured along its evaluations by its rank on `metric` among the members
    evaluated at that step; at each exploit an arrow from the donor's lane to the recipient's
    at that step; each member's final value at the right end, the best member's lane bold.
    None when no trial is a member.

    Coloured by the objective, not by a mutable param: the objective is what each round ranks,
    and every evaluation is on the member's trial, while the params it trained with between two
    of its exploits are not (its schedule becomes its donor's up to its last exploit; its run's
    hp/ metrics keep them). By its rank at each step, not its value: a GAN's objective falls by
    orders of magnitude over a run, the whole population together, so a colour of the value
    tells the step and hardly the member; the rank is what a round acts on, so the arrows run
    from dark (leading) lanes into light ones, and a recipient darkens after its copy.

    Drawn on a `Figure` of its own, not through pyplot: the page draws it on its own thread,
    and pyplot's figure registry and global style are not thread-safe."""
    members = sorted((t for t in trials if is_member(t)), key=lambda t: t.number)
    if not members:
        return None
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(LINEAGE_WIDTH_IN, max(2.8, 1.5 + LANE_IN * len(members))))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    cmap, ranks = matplotlib.colormaps["viridis"], step_ranks(members, maximize)
    top = ranked(members, maximize) or ranked(members, maximize, running=True)
    best = top[0].trial.number if top else None
    labels = [_lane(axes, t, steps, ranks, cmap, bold=t.number == best) for t in members]
    _exploit_arrows(axes, members, steps)
    _lineage_axes(axes, members, interval, steps, best, max(map(len, labels)))
    if ranks:
        from matplotlib.cm import ScalarMappable

        bar = figure.colorbar(ScalarMappable(cmap=cmap), ax=axes, pad=0.01, fraction=0.04,
                              ticks=[0, 1])
        bar.ax.set_yticklabels(["best", "worst"], fontsize=8)
        bar.ax.invert_yaxis()  # the best on top, as the first lane
        bar.set_label(f"rank by {metric} at each evaluation", fontsize=8)
    buf = io.BytesIO()
    figure.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return buf.getvalue()


def step_ranks(members: list[FrozenTrial], maximize: bool) -> dict[tuple[int, int], float]:
    """(trial, step) -> the member's rank among those that reported a finite value at that
    step, from 0 (the best) to 1 (the worst); a member alone at its step ranks 0."""
    by_step: dict[int, list[tuple[float, int]]] = {}
    for t in members:
        for step, value in t.intermediate_values.items():
            if math.isfinite(value):
                by_step.setdefault(step, []).append((-value if maximize else value, t.number))
    found = {}
    for step, scored in by_step.items():
        order = sorted(scored)
        for i, (_, number) in enumerate(order):
            found[number, step] = i / (len(order) - 1) if len(order) > 1 else 0.0
    return found


def _lane(axes, t: FrozenTrial, steps: int, ranks: dict[tuple[int, int], float], cmap,
          bold: bool) -> str:
    """One member's lane: grey where it has not reported; each stretch up to an evaluation in
    the colour of its rank there; its final value (and state, if not complete) at the right
    end, which it returns."""
    from matplotlib.collections import LineCollection

    y = t.number
    axes.plot([0, steps], [y, y], color="0.88", linewidth=1, zorder=1, solid_capstyle="butt")
    reported = sorted((s, v) for s, v in t.intermediate_values.items() if math.isfinite(v))
    segments, colors, start = [], [], 0
    for step, _ in reported:
        segments.append([(start, y), (step, y)])
        colors.append(cmap(ranks[t.number, step]))
        start = step
    width = 7.0 if bold else 4.0
    if bold and segments:  # a black rim: the best member's lane reads at a glance
        axes.add_collection(LineCollection(segments, colors="black", linewidths=width + 2.5,
                                           capstyle="butt", zorder=2))
    if segments:
        axes.add_collection(LineCollection(segments, colors=colors, linewidths=width,
                                           capstyle="butt", zorder=3))
    final = t.values[0] if t.state == TrialState.COMPLETE and t.values else (
        reported[-1][1] if reported else None)
    label = "-" if final is None else f"{final:.4g}"
    if t.state != TrialState.COMPLETE:
        label += f" ({t.state.name.lower()})"
    axes.text(steps * 1.015, y, label, va="center", fontsize=8,
              fontweight="bold" if bold else "normal")
    return label


def _exploit_arrows(axes, members: list[FrozenTrial], steps: int) -> None:
    """An arrow from the donor's lane to the recipient's at each exploit's step (a dot at the
    donor); the exploits of one round side by side, a little apart, so that none hides
    another."""
    from matplotlib.patches import FancyArrowPatch

    rounds: dict[int, list[tuple[int, int]]] = {}
    for t in members:
        for step, donor in exploits(t):
            rounds.setdefault(step, []).append((donor, t.number))
    apart = steps * 0.02
    for step, found in rounds.items():
        for i, (donor, recipient) in enumerate(sorted(found)):
            x = step + (i - (len(found) - 1) / 2) * apart
            axes.plot([x], [donor], "o", color="black", markersize=3.5, zorder=5)
            axes.add_patch(FancyArrowPatch((x, donor), (x, recipient), arrowstyle="-|>",
                                           mutation_scale=11, linewidth=1.2, color="black",
                                           shrinkA=0, shrinkB=4, zorder=5))


def _lineage_axes(axes, members: list[FrozenTrial], interval: int, steps: int,
                  best: int | None, label_chars: int) -> None:
    """Steps across with a dotted line at each round, a member per row (the first on top), the
    best member's number bold; room on the right for final values of `label_chars`."""
    for step in range(interval, steps, interval):
        axes.axvline(step, color="0.6", linestyle=":", linewidth=0.8, zorder=0)
    rounds = list(range(0, steps + 1, interval))
    if len(rounds) <= 12:  # else matplotlib's own ticks
        axes.set_xticks(rounds + ([steps] if rounds[-1] != steps else []))
    numbers = [t.number for t in members]
    axes.set_yticks(numbers, [str(n) for n in numbers])
    for label, n in zip(axes.get_yticklabels(), numbers, strict=True):
        label.set_fontweight("bold" if n == best else "normal")
    axes.set_xlim(0, steps * (1.03 + CHAR_WIDTH * label_chars))
    axes.spines["bottom"].set_bounds(0, steps)
    axes.set_ylim(max(numbers) + 0.7, min(numbers) - 0.7)  # the first member on top
    axes.spines[["top", "right"]].set_visible(False)
    axes.set_xlabel("step")
    axes.set_ylabel("member (trial)")
    axes.set_title(LINEAGE_TITLE, loc="left", fontsize=11, pad=16)
    axes.text(0, 1.01, "arrow: the donor's state (dot) copied into the member it points to; "
                       "bold: the best member; right: final values", transform=axes.transAxes,
              fontsize=8, color="0.35", va="bottom")


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
