"""Cost-quality curves and the questions the benchmark tables answer.

Rows are the dicts written by ``selectsearch eval --json`` (one per route and budget), as
:func:`selectsearch.evaluation.evaluate` returns them.

Example:
    >>> rows = [{"route": "all", "router": "all", "budget": None, "metrics": {"nDCG@10": 0.5},
    ...          "cost": {"fraction_scored": 1.0}},
    ...         {"route": "cori@1", "router": "cori", "budget": 1, "metrics": {"nDCG@10": 0.49},
    ...          "cost": {"fraction_scored": 0.1}}]
    >>> budget_to_reach(rows, "nDCG@10", 0.95)
    {'cori': {'budget': 1, 'fraction_scored': 0.1, 'value': 0.49}}
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from selectsearch.bench.report import pyplot, save_figure
from selectsearch.errors import SelectSearchError

__all__ = ["available_metrics", "budget_to_reach", "check_rows", "crossing", "first_reaching", "interpolate_at",
           "markdown_table", "plot_curves", "targets_table"]

Row = Mapping[str, Any]


def _families(rows: Sequence[Row]) -> dict[str, list[Row]]:
    """Rows per router, cheapest first; a router's per-query budgets (``hybrid@auto:T`` rows) are
    a family of their own, ``hybrid@auto``, one point per target."""
    out: dict[str, list[Row]] = {}
    for row in rows:
        name = row.get("router", row["route"].split("@")[0])
        out.setdefault(f"{name}@auto" if "auto" in row else name, []).append(row)
    for family in out.values():
        family.sort(key=lambda r: r["cost"]["fraction_scored"])
    return out


def check_rows(rows: object) -> None:
    """Raise unless ``rows`` is a non-empty list of evaluation rows (``route``, ``metrics``, ``cost``).

    Raises:
        SelectSearchError: saying what is wrong and where rows come from.
    """
    if not isinstance(rows, list) or not rows:
        raise SelectSearchError("the results hold no rows; write them with `selectsearch eval ... --json FILE`")
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not all(isinstance(row.get(k), t) for k, t in
                                                (("route", str), ("metrics", dict), ("cost", dict))):
            raise SelectSearchError(f"row {i + 1} of the results is not an evaluation row (route, metrics, cost); "
                                    "write them with `selectsearch eval ... --json FILE`")
        if "fraction_scored" not in row["cost"]:
            raise SelectSearchError(f"row {i + 1} ({row['route']}) has no cost.fraction_scored to plot against")


def available_metrics(rows: Sequence[Row]) -> list[str]:
    """Every metric name in ``rows``, in first-seen order."""
    return list(dict.fromkeys(m for r in rows for m in r["metrics"]))


def plot_curves(rows: Sequence[Row], out: str | Path, *, metrics: Sequence[str] = ("nDCG@10", "R@100", "coverage"),
                title: str | None = None) -> Path:
    """Quality against fraction of the collection scored, one line per router.

    ``all`` (exhaustive) is drawn as a horizontal dashed line, ``oracle`` as a dotted reference.
    Metrics that no row has are left out.

    Raises:
        SelectSearchError: no rows, rows that are not evaluation rows, or none of ``metrics`` in
            any row (the message names the metrics the rows have).
    """
    check_rows(rows)
    available = available_metrics(rows)
    metrics = [m for m in metrics if m in available]
    if not metrics:
        raise SelectSearchError(f"none of the metrics asked for is in the results; available: {', '.join(available)}")
    plt = pyplot()
    families = _families(rows)
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 4.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for name, family in sorted(families.items()):
            pts = [(r["cost"]["fraction_scored"], r["metrics"][metric]) for r in family if metric in r["metrics"]]
            if not pts:
                continue
            if name == "all":
                ax.axhline(pts[0][1], color="black", linestyle="--", linewidth=1, label="exhaustive")
                continue
            swept = [(r["cost"]["fraction_scored"], r["metrics"][metric]) for r in family
                     if metric in r["metrics"] and (r["budget"] is not None or "auto" in r)]
            own_cutoff = [(r["cost"]["fraction_scored"], r["metrics"][metric]) for r in family
                          if metric in r["metrics"] and r["budget"] is None and "auto" not in r]
            style = {"linestyle": ":", "color": "grey"} if name == "oracle" else {}
            line = None
            if swept:
                xs, ys = zip(*swept, strict=True)
                [line] = ax.plot(xs, ys, marker="o", markersize=3, label=name, **style)
            for x, y in own_cutoff:  # a router's own cut-off rule (e.g. `ranks`): one point
                ax.plot([x], [y], marker="*", markersize=10, linestyle="none",
                        color=line.get_color() if line is not None else None, label=f"{name} (own cut-off)")
        ax.set_xscale("log")
        ax.set_xlabel("fraction of collection scored")
        ax.set_ylabel(metric)
        ax.grid(True, alpha=0.3)
    axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return save_figure(fig, Path(out), dpi=120)


def budget_to_reach(rows: Sequence[Row], metric: str, share: float) -> dict[str, dict[str, Any] | None]:
    """Per router, the cheapest budget whose ``metric`` reaches ``share`` of exhaustive's.

    Returns ``{router: {"budget", "fraction_scored", "value"} or None (never reached)}``; for a
    family of per-query budgets (``hybrid@auto``) ``budget`` is the cheapest target's text
    (``auto:0.8``).
    """
    families = _families(rows)
    if "all" not in families:
        raise ValueError("budget_to_reach needs the 'all' row as the exhaustive reference")
    target = share * families["all"][0]["metrics"][metric]
    out: dict[str, dict[str, Any] | None] = {}
    for name, family in families.items():
        if name == "all":
            continue
        reached = [r for r in family if (r["budget"] is not None or "auto" in r)
                   and r["metrics"].get(metric, -1) >= target]
        best = min(reached, key=lambda r: r["cost"]["fraction_scored"]) if reached else None
        budget = None if best is None else (best["budget"] if "auto" not in best else best["route"].split("@", 1)[1])
        out[name] = None if best is None else {"budget": budget, "fraction_scored":
                                               best["cost"]["fraction_scored"], "value": best["metrics"][metric]}
    return out


def targets_table(rows: Sequence[Row], metrics: Sequence[str] = ("nDCG@10", "R@100"),
                  shares: Sequence[float] = (0.95, 0.99)) -> str:
    """Markdown: at what fraction of the collection each router reaches each share of exhaustive."""
    header = ["router", *[f"{int(s * 100)}% {m}" for m in metrics for s in shares]]
    answers = {(m, s): budget_to_reach(rows, m, s) for m in metrics for s in shares}
    routers = sorted({r for a in answers.values() for r in a})
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for router in routers:
        cells = [router]
        for m in metrics:
            for s in shares:
                hit = answers[(m, s)].get(router)
                cells.append("not reached" if hit is None else f"{hit['fraction_scored']:.3f} (m={hit['budget']})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_table(rows: Sequence[Row], metrics: Sequence[str] | None = None) -> str:
    """All rows as a Markdown table: quality, selective-search measures and cost."""
    if not rows:
        return "(no rows)"
    metrics = list(metrics or available_metrics(rows))  # any route order
    cost = [("shards", "shards_searched", "{:.2f}"), ("frac scored", "fraction_scored", "{:.3f}"),
            ("largest shard", "largest_shard_fraction", "{:.3f}"), ("route ms", "router_ms", "{:.2f}"),
            ("search ms p50", "search_ms_p50", "{:.2f}"), ("total ms p95", "total_ms_p95", "{:.2f}")]
    header = ["route", *metrics, *[c[0] for c in cost]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["route"]]
        cells += [f"{row['metrics'][m]:.4f}" if m in row["metrics"] else "" for m in metrics]
        cells += [fmt.format(row["cost"][key]) if key in row["cost"] else "" for _, key, fmt in cost]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- one curve of (cost, quality) points
def interpolate_at(points: Sequence[tuple[float, float]], x: float) -> float:
    """Piecewise-linear value of a (fraction, metric) curve at fraction ``x`` (``np.interp``: flat beyond the ends).

    Example:
        >>> interpolate_at([(0.1, 0.5), (0.3, 0.7)], 0.2)
        0.6
    """
    import numpy as np

    pts = sorted(points)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return float(np.interp(x, xs, ys))


def first_reaching(points: Sequence[tuple[float, float]], target: float) -> float | None:
    """Smallest measured fraction whose metric is at least ``target`` (``None`` if never).

    Example:
        >>> first_reaching([(0.3, 0.7), (0.1, 0.5)], 0.6)
        0.3
    """
    for x, y in sorted(points):
        if y >= target:
            return x
    return None


def crossing(points: Sequence[tuple[float, float]], target: float) -> float | None:
    """Fraction where the piecewise-linear curve first reaches ``target`` (``None`` if never).

    Example:
        >>> round(crossing([(0.1, 0.5), (0.3, 0.7)], 0.6), 6)
        0.2
    """
    pts = sorted(points)
    if pts and pts[0][1] >= target:
        return pts[0][0]
    for (x0, y0), (x1, y1) in itertools.pairwise(pts):
        if y0 < target <= y1:
            return x0 + (target - y0) / (y1 - y0) * (x1 - x0)
    return None
