"""One inline SVG per rollout: the canary weight and each metric over time, in stacked panels.

Plain SVG written by hand (a few lines and circles), so the HTML report needs no JavaScript, no
CDN and no plotting library. Failed checks are red dots; thresholds are dashed lines. Checks of
the compare judge also carry the primary's value: a grey line beside the canary's; the weight panel
draws the primary's share (100 minus the canary's weight) beside the canary's in every chart.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from gitcanary.audit.model import Rollout

WIDTH = 720
PANEL = 80  # height of one panel's plot area
GAP = 34  # room for a panel's title above it
LEFT, RIGHT, BOTTOM = 58, 16, 26
OK_COLOR, FAIL_COLOR, LINE_COLOR, WEIGHT_COLOR = "#2e7d32", "#c62828", "#1565c0", "#6a1b9a"
PRIMARY_COLOR = "#757575"
_MARKS = {"halt": "#ef6c00", "rollback": FAIL_COLOR, "promote": OK_COLOR, "cancel": "#777", "restart": "#777"}


@dataclass(frozen=True)
class _Series:
    title: str
    points: list[tuple[float, float | None, bool]]  # (seconds since start, value or no data, ok)
    low: float | None = None
    high: float | None = None
    fixed: tuple[float, float] | None = None  # the y range, when it is known (weight 0..100)
    step: bool = False  # weights hold until the next commit: draw steps, not slopes
    primary: tuple[tuple[float, float], ...] = ()  # the compare judge's primary values, if any


def _series(rollout: Rollout) -> list[_Series]:
    start = rollout.started
    weight: list[tuple[float, float | None, bool]] = [
        ((s.time - start).total_seconds(), float(s.weight), True) for s in rollout.steps
    ]
    # The primary serves what the canary's weight leaves: drawn beside it in the weight panel.
    primary_weight = tuple((seconds, 100 - float(value or 0)) for seconds, value, _ in weight)
    found = [_Series("traffic weight %", weight, fixed=(0, 100), step=True, primary=primary_weight)]
    metrics: dict[str, list[tuple[float, float | None, bool]]] = {}
    bounds: dict[str, tuple[float | None, float | None]] = {}
    primaries: dict[str, list[tuple[float, float]]] = {}
    for step in rollout.steps:
        seconds = (step.time - start).total_seconds()
        for check in step.checks:
            metrics.setdefault(check.name, []).append((seconds, check.value, check.ok))
            bounds[check.name] = (check.min, check.max)
            if check.primary is not None:
                primaries.setdefault(check.name, []).append((seconds, check.primary))
    for name, points in metrics.items():
        low, high = bounds[name]
        found.append(_Series(name, points, low, high, primary=tuple(primaries.get(name, ()))))
    return found


def _fmt(number: float) -> str:
    return f"{number:.4g}"


def _clock(seconds: float) -> str:
    whole = int(seconds)
    if whole >= 3600:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 60}m{whole % 60:02d}s" if whole >= 60 else f"{whole}s"


def render_svg(rollout: Rollout) -> str:
    series = _series(rollout)
    span = max((rollout.steps[-1].time - rollout.started).total_seconds(), 1.0)
    height = len(series) * (PANEL + GAP) + BOTTOM
    plot_width = WIDTH - LEFT - RIGHT

    def x_of(seconds: float) -> float:
        return LEFT + plot_width * seconds / span

    title = f"{rollout.canary} {rollout.from_revision} -> {rollout.to_revision}: {rollout.outcome.value}"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
    ]
    for index, item in enumerate(series):
        top = index * (PANEL + GAP) + GAP
        values = [v for _, v, _ in item.points if v is not None] + [v for _, v in item.primary]
        limits = [v for v in (item.low, item.high) if v is not None]
        if item.fixed:
            lo, hi = item.fixed
        else:
            lo, hi = min(values + limits, default=0.0), max(values + limits, default=1.0)
            pad = (hi - lo) * 0.1 or abs(hi) * 0.1 or 1.0
            lo, hi = lo - pad, hi + pad

        def y_of(value: float, top: float = top, lo: float = lo, hi: float = hi) -> float:
            return top + PANEL - PANEL * (value - lo) / (hi - lo)

        out.append(f'<text x="{LEFT}" y="{top - 8}" font-weight="bold">{escape(item.title)}</text>')
        out.append(
            f'<rect x="{LEFT}" y="{top}" width="{plot_width}" height="{PANEL}" fill="#fafafa" stroke="#ccc"/>'
        )
        for edge in (lo, hi):
            out.append(f'<text x="{LEFT - 4}" y="{y_of(edge) + 4:.1f}" text-anchor="end">{_fmt(edge)}</text>')
        for limit in limits:
            y = y_of(limit)
            out.append(
                f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_width}" y2="{y:.1f}" '
                f'stroke="{FAIL_COLOR}" stroke-dasharray="4 3"><title>threshold {_fmt(limit)}</title></line>'
            )
            out.append(
                f'<text x="{LEFT + plot_width - 2}" y="{y - 3:.1f}" text-anchor="end" fill="{FAIL_COLOR}">'
                f"threshold {_fmt(limit)}</text>"
            )
        if item.primary:
            steps: list[str] = []
            for seconds, value in item.primary:
                if item.step and steps:
                    steps.append(f"H{x_of(seconds):.1f}")
                steps.append(f"{'L' if steps else 'M'}{x_of(seconds):.1f},{y_of(value):.1f}")
            if item.step:
                steps.append(f"H{LEFT + plot_width:.1f}")
            line = " ".join(steps)
            out.append(
                f'<path d="{line}" fill="none" stroke="{PRIMARY_COLOR}" stroke-width="2" '
                f'stroke-dasharray="6 3"><title>primary{" weight" if item.step else ""}</title></path>'
            )
            out.append(
                f'<text x="{LEFT + plot_width - 2}" y="{top - 8}" text-anchor="end" fill="{PRIMARY_COLOR}">'
                f'canary <tspan fill="{WEIGHT_COLOR if item.step else LINE_COLOR}">&#8212;</tspan> '
                "primary &#8212; &#8212;</text>"
            )
        elif not item.step:
            # The threshold judge measures the canary only: say so where the primary's line would be.
            out.append(
                f'<text x="{LEFT + plot_width - 2}" y="{top - 8}" text-anchor="end" fill="{PRIMARY_COLOR}">'
                "canary; primary not measured (threshold judge)</text>"
            )
        path: list[str] = []
        for seconds, point, _ok in item.points:
            if point is None:
                continue
            x, y = x_of(seconds), y_of(point)
            if item.step and path:
                path.append(f"H{x:.1f}")
            path.append(f"{'L' if path else 'M'}{x:.1f},{y:.1f}")
        if item.step and path:
            path.append(f"H{LEFT + plot_width:.1f}")
        if path:
            color = WEIGHT_COLOR if item.step else LINE_COLOR
            out.append(f'<path d="{" ".join(path)}" fill="none" stroke="{color}" stroke-width="2"/>')
        if not item.step:
            for seconds, point, ok in item.points:
                x = x_of(seconds)
                shown = "no data" if point is None else _fmt(point)
                y = y_of(point) if point is not None else top + PANEL - 4
                out.append(
                    f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{OK_COLOR if ok else FAIL_COLOR}">'
                    f"<title>+{_clock(seconds)} {escape(item.title)} {shown} {'ok' if ok else 'failed'}"
                    "</title></circle>"
                )
    axis_y = len(series) * (PANEL + GAP) + 14
    ticks = ((0.0, "start"), (0.25, "middle"), (0.5, "middle"), (0.75, "middle"), (1.0, "end"))
    for fraction, anchor in ticks:
        out.append(
            f'<text x="{x_of(span * fraction):.1f}" y="{axis_y}" text-anchor="{anchor}">'
            f"+{_clock(span * fraction)}</text>"
        )
    # Where the rollout turned: halts, the promotion, the rollback, a restart.
    for step in rollout.steps:
        mark = _MARKS.get(step.action)
        if mark is None:
            continue
        seconds = (step.time - rollout.started).total_seconds()
        x = x_of(seconds)
        out.append(
            f'<line x1="{x:.1f}" y1="{GAP}" x2="{x:.1f}" y2="{GAP + PANEL}" stroke="{mark}" '
            f'stroke-width="1.5"><title>{escape(step.action)} at +{_clock(seconds)}</title></line>'
        )
        # Labels near the right edge go to the left of their line, so they are not cut off.
        near_end = x > LEFT + plot_width * 0.85
        anchor, label_x = ("end", x - 2) if near_end else ("start", x + 2)
        out.append(
            f'<text x="{label_x:.1f}" y="{GAP + 10}" text-anchor="{anchor}" fill="{mark}">'
            f"{escape(step.action)}</text>"
        )
    out.append("</svg>")
    return "\n".join(out)
