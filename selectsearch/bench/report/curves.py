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

from selectsearch.bench.report import pyplot
from selectsearch.errors import SelectSearchError

__all__ = ["FORMATS", "PRESETS", "X_AXES", "available_metrics", "budget_to_reach", "check_rows", "crossing",
           "figure_text", "first_reaching", "interpolate_at", "markdown_table", "plot_curves", "targets_table"]

Row = Mapping[str, Any]


def _families(rows: Sequence[Row], key: str = "fraction_scored") -> dict[str, list[Row]]:
    """Rows per router, cheapest first (by ``cost[key]``); a router's per-query budgets
    (``hybrid@auto:T`` rows) are a family of their own, ``hybrid@auto``, one point per target."""
    out: dict[str, list[Row]] = {}
    for row in rows:
        name = row.get("router", row["route"].split("@")[0])
        out.setdefault(f"{name}@auto" if "auto" in row else name, []).append(row)
    for family in out.values():
        family.sort(key=lambda r: r["cost"][key])
    return out


#: what ``x`` can be: cost key, axis label, log scale, what to do when rows lack it
X_AXES: dict[str, tuple[str, str, bool, str]] = {
    "fraction": ("fraction_scored", "fraction of the collection scored", True,
                 "write the results with `selectsearch eval ... --json FILE`"),
    "shards": ("shards_searched", "shards searched per query", True,
               "write the results with `selectsearch eval ... --json FILE`"),
    "cpu": ("cpu_ms", "CPU ms per query (route + search)", True,
            "evaluate again: `selectsearch eval` records cost.cpu_ms since the significance release"),
    "postings": ("postings", "postings scored per query", True,
                 "evaluate with `selectsearch eval ... --postings`"),
}

#: figure presets: (width per panel or column width in inches, panel height, font size, panels stacked)
PRESETS: dict[str, tuple[float, float, float, bool]] = {
    "screen": (5.2, 4.2, 10.0, False),   # one wide figure for reports and READMEs
    "column": (3.4, 2.5, 8.0, True),     # one column of a two-column paper (ACM/IEEE ~3.3 in): panels stacked
    "page": (7.0, 2.9, 9.0, False),      # the full text width of a paper: panels side by side
}

#: the formats ``plot_curves`` writes, by file extension
FORMATS = (".pdf", ".svg", ".png")

# Okabe & Ito's colour-blind-safe palette (yellow left out: too light on white and in greyscale),
# each router also with its own marker and line style so that greyscale prints stay readable
_PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
_LINES: tuple[Any, ...] = ("-", "--", "-.", (0, (1, 1)), (0, (5, 1, 1, 1, 1, 1)), (0, (3, 1, 1, 1)),
                           (0, (6, 2)))
#: fixed styles of the built-in routers (same router, same look, in every figure)
_KNOWN = ("hybrid", "mico", "cori", "taily", "redde", "ranks", "centroid", "knn", "distilled", "random")


def _order(names: Sequence[str]) -> list[str]:
    """Router families in a fixed order: built-in routers as in :data:`_KNOWN`, others by name, oracle last."""
    def key(name: str) -> tuple[int, str]:
        base = name.split("@")[0]
        return (_KNOWN.index(base) if base in _KNOWN else len(_KNOWN) + (base == "oracle"), name)

    return sorted((n for n in names if n != "all"), key=key)


def _styles(names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Colour, marker and line style per router family of one figure (``oracle``: grey, dotted).

    Styles go to the families in :func:`_order`, so up to 7 routers get 7 different colours, and
    the same set of routers gets the same look in every figure.
    """
    out: dict[str, dict[str, Any]] = {}
    i = 0
    for name in _order(names):
        if name.split("@")[0] == "oracle":
            out[name] = {"color": "0.45", "marker": "x", "linestyle": ":"}
            continue
        out[name] = {"color": _PALETTE[i % len(_PALETTE)], "marker": _MARKERS[i % len(_MARKERS)],
                     "linestyle": _LINES[i % len(_LINES)]}
        i += 1
    return out


def check_rows(rows: object, x: str = "fraction") -> None:
    """Raise unless ``rows`` is a non-empty list of evaluation rows (``route``, ``metrics``, ``cost``)
    whose cost has what the ``x`` axis plots (:data:`X_AXES`).

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
    if x not in X_AXES:
        raise SelectSearchError(f"unknown x axis {x!r}; one of {', '.join(X_AXES)}")
    key, _, _, fix = X_AXES[x]
    lacking = [row["route"] for row in rows if not isinstance(row["cost"].get(key), (int, float))]
    if lacking:
        raise SelectSearchError(f"{len(lacking)} of {len(rows)} rows have no cost.{key} to plot against (e.g. "
                                f"{', '.join(lacking[:3])}); {fix}, or choose another --x")


def available_metrics(rows: Sequence[Row]) -> list[str]:
    """Every metric name in ``rows``, in first-seen order."""
    return list(dict.fromkeys(m for r in rows for m in r["metrics"]))


def figure_text(rows: Sequence[Row]) -> tuple[str | None, str | None]:
    """A title and a caption from the ``setup`` the rows carry (``selectsearch eval`` writes it).

    ``(None, None)`` for rows without one (results written before it was recorded).

    Example:
        >>> setup = {"collection": "scifact", "n_shards": 16, "partitioner": "kmeans-lexical", "queries": 300,
        ...          "split": "test", "k": 100, "n_docs": 5183, "retriever": "bm25"}
        >>> figure_text([{"route": "all", "setup": setup}])[0]
        'scifact: 16 kmeans-lexical shards, 300 test queries'
    """
    setup = next((r["setup"] for r in rows if isinstance(r.get("setup"), dict)), None)
    if setup is None:
        return None, None
    collection = setup.get("collection") or setup.get("index") or "collection"
    split = f" {setup['split']}" if setup.get("split") else ""
    title = (f"{collection}: {setup.get('n_shards', '?')} {setup.get('partitioner') or ''} shards, "
             f"{setup.get('queries', '?')}{split} queries").replace("  ", " ")
    docs = f"{setup['n_docs']:,} documents" if isinstance(setup.get("n_docs"), int) else "the collection"
    caption = (f"Quality against cost of selective search on {collection} ({docs} in {setup.get('n_shards', '?')} "
               f"{setup.get('partitioner') or ''} shards; {setup.get('retriever', 'bm25')} with collection-wide "
               f"statistics, top {setup.get('k', '?')} hits; {setup.get('queries', '?')}{split} queries). One line "
               "per router; numbers at points are shards searched per query (m); the dashed line is exhaustive "
               "search").replace("  ", " ")
    return title, caption


def _y(row: Row, metric: str, relative: bool, exhaustive: float | None) -> tuple[float, tuple[float, float] | None]:
    """A row's y value and its interval (``None`` without one) on the chosen scale."""
    value = float(row["metrics"][metric])
    ci = (row.get("ci") or {}).get(metric)
    if not relative:
        return value, (float(ci[0]), float(ci[1])) if ci else None
    assert exhaustive is not None
    sig = ((row.get("significance") or {}).get("measures") or {}).get(metric) or {}
    ratio_ci = sig.get("ratio_ci")
    return 100.0 * value / exhaustive, (100.0 * ratio_ci[0], 100.0 * ratio_ci[1]) if ratio_ci else None


def _label(row: Row) -> str | None:
    """The text at a point: its budget m (powers of two only, to stay legible), or an auto target."""
    if "auto" in row:
        return row["route"].split("auto:", 1)[1].split("/")[0] if "auto:" in row["route"] else None
    m = row.get("budget")
    return str(m) if isinstance(m, int) and m > 0 and m & (m - 1) == 0 else None


def plot_curves(rows: Sequence[Row], out: str | Path, *, metrics: Sequence[str] = ("nDCG@10", "R@100", "coverage"),
                title: str | None = None, x: str = "fraction", relative: bool = False, bands: bool = True,
                labels: bool = True, preset: str = "screen", caption: str | None = None) -> Path:
    """Quality against cost, one line per router, written as PDF, SVG or PNG (by ``out``'s extension).

    Each router has its own colour (Okabe-Ito), marker and line style, so figures stay readable
    in greyscale and for colour-blind readers; points are labelled with their budget m (powers
    of two) or target (``NAME@auto:T``). ``all`` (exhaustive) is a dashed black line labelled
    with its value, ``oracle`` a grey dotted reference. ``x``: ``fraction`` of the collection
    scored, ``shards`` searched, ``cpu`` ms or ``postings`` per query (:data:`X_AXES`, log
    scale). ``relative`` plots % of exhaustive (needs the ``all`` row). ``bands`` shades the
    95% bootstrap interval over queries where rows carry one (``ci``; for ``relative`` the
    paired interval of the ratio). ``preset``: ``screen``, ``column`` or ``page``
    (:data:`PRESETS`). The title and ``caption`` are stored in the file's metadata too.

    Raises:
        SelectSearchError: no rows, rows that are not evaluation rows or lack the ``x`` cost, none
            of ``metrics`` in any row, ``relative`` without the ``all`` row, an unknown preset,
            or an extension other than .pdf, .svg, .png.
    """
    check_rows(rows, x)
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise SelectSearchError(f"cannot write {out.name}: the figure format comes from the extension, one of "
                                f"{', '.join(FORMATS)}")
    if preset not in PRESETS:
        raise SelectSearchError(f"unknown preset {preset!r}; one of {', '.join(PRESETS)}")
    available = available_metrics(rows)
    metrics = [m for m in metrics if m in available]
    if not metrics:
        raise SelectSearchError(f"none of the metrics asked for is in the results; available: {', '.join(available)}")
    families = _families(rows, X_AXES[x][0])
    exhaustive_row = families.get("all", [None])[0]
    if relative and exhaustive_row is None:
        raise SelectSearchError("a y axis relative to exhaustive search needs the 'all' row; evaluate with --route all")
    width, height, font, stacked = PRESETS[preset]
    n_shards = max((r["setup"].get("n_shards") for r in rows if isinstance(r.get("setup"), dict)
                    and isinstance(r["setup"].get("n_shards"), int)), default=None)
    plt = pyplot()
    key, xlabel, log_x, _ = X_AXES[x]
    rc = {"font.size": font, "axes.titlesize": font, "axes.labelsize": font, "legend.fontsize": font - 1,
          "xtick.labelsize": font - 1, "ytick.labelsize": font - 1, "pdf.fonttype": 42, "ps.fonttype": 42,
          "svg.fonttype": "none", "lines.linewidth": 1.2 if preset != "screen" else 1.5,
          "lines.markersize": 3.5 if preset != "screen" else 5}
    with plt.rc_context(rc):
        n = len(metrics)
        shape, size = ((n, 1), (width, height * n)) if stacked else ((1, n), (width * n if preset == "screen"
                                                                           else width, height))
        fig, axes = plt.subplots(*shape, figsize=size, squeeze=False, layout="constrained")
        styles = _styles(list(families))
        for ax, metric in zip(axes.reshape(-1), metrics, strict=True):
            exhaustive = (float(exhaustive_row["metrics"][metric]) if exhaustive_row is not None
                          and metric in exhaustive_row["metrics"] else None)
            if relative and not exhaustive:
                raise SelectSearchError(f"exhaustive {metric} is {exhaustive}: no % of exhaustive to plot; "
                                        "plot absolute values (without --relative)")
            for name, style in styles.items():
                _plot_family(ax, name, families[name], metric, key, relative, exhaustive, bands,
                             labels, style, font, last_budget=n_shards)
            if exhaustive is not None:
                level = 100.0 if relative else exhaustive
                ax.axhline(level, color="black", linestyle="--", linewidth=0.9, label="exhaustive", zorder=1)
                ax.annotate(f"exhaustive {exhaustive:.4f}", xy=(0.01, level), xycoords=("axes fraction", "data"),
                            ha="left", va="bottom", fontsize=font - 1.5, zorder=5,
                            bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none",
                                  "alpha": 0.8})
            if log_x:
                _log_axis(ax, x)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(f"{metric} (% of exhaustive)" if relative else metric)
            ax.grid(True, alpha=0.3, linewidth=0.5)
        seen: dict[str, Any] = {}  # one legend entry per router, whatever panel drew it
        for ax in axes.reshape(-1):
            for handle, text in zip(*ax.get_legend_handles_labels(), strict=True):
                seen.setdefault(text, handle)
        # as many legend columns as the figure's width holds (handle + text at this font size)
        entry_inches = (3.4 * font + 0.55 * font * max(map(len, seen), default=1)) / 72.0
        ncol = max(1, min(len(seen), int(size[0] / entry_inches)))
        if title:
            import textwrap

            title_font = font + (1 if preset == "screen" else 0)
            fig.suptitle(textwrap.fill(title, width=max(20, int(size[0] * 72 / (0.56 * title_font)))),
                         fontsize=title_font)
        fig.legend(list(seen.values()), list(seen.keys()), loc="outside lower center", ncol=ncol, frameon=False,
                   handlelength=2.6, columnspacing=1.2)
        out.parent.mkdir(parents=True, exist_ok=True)
        meta = _metadata(out.suffix.lower(), title, caption)
        fig.savefig(out, dpi=300 if preset != "screen" else 120, metadata=meta)
        plt.close(fig)
    return out


def _log_axis(ax: Any, x: str) -> None:
    """A log x axis with readable ticks: 5%, 10%, 20% ... for fractions, 1, 2, 4, 8 ... for shards."""
    from matplotlib import ticker

    if x == "shards":
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        return
    ax.set_xscale("log")
    if x == "fraction":
        ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{100 * v:g}%"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())


def _metadata(suffix: str, title: str | None, caption: str | None) -> dict[str, str]:
    """Title and caption in each format's own metadata keys."""
    out = {"Title": title} if title else {}
    if caption:
        out[{".pdf": "Subject", ".svg": "Description", ".png": "Description"}[suffix]] = caption
    return out


def _plot_family(ax: Any, name: str, family: Sequence[Row], metric: str, key: str, relative: bool,
                 exhaustive: float | None, bands: bool, labels: bool, style: Mapping[str, Any], font: float, *,
                 last_budget: int | None) -> None:
    """One router's line (budgets or targets), its band, labels, and its own cut-off as a star."""
    have = [r for r in family if metric in r["metrics"]]
    swept = [r for r in have if r.get("budget") is not None or "auto" in r]
    own = [r for r in have if r.get("budget") is None and "auto" not in r]
    if swept:
        xs = [float(r["cost"][key]) for r in swept]
        ys, cis = zip(*(_y(r, metric, relative, exhaustive) for r in swept), strict=True)
        ax.plot(xs, ys, label=name, zorder=3, **style)
        if bands and all(c is not None for c in cis) and len(xs) > 1:
            ax.fill_between(xs, [c[0] for c in cis if c], [c[1] for c in cis if c], color=style["color"],
                            alpha=0.13, linewidth=0, zorder=2)
        if labels:
            for r, px, py in zip(swept, xs, ys, strict=True):
                text = _label(r)
                if text is not None and r.get("budget") != last_budget:  # every shard: where all lines meet
                    ax.annotate(text, (px, py), textcoords="offset points", xytext=(2.5, -7.5),
                                fontsize=font - 2.5, color=style["color"], zorder=4)
    for r in own:  # a router's own cut-off rule (e.g. `ranks`): one point
        px, (py, _) = float(r["cost"][key]), _y(r, metric, relative, exhaustive)
        ax.plot([px], [py], marker="*", markersize=9, linestyle="none", color=style["color"],
                label=f"{name} (own cut-off)", zorder=3)


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
    """All rows as a Markdown table: quality, selective-search measures and cost, and (rows tested
    against a baseline) the verdict and win/tie/loss counts of the first tested measure."""
    if not rows:
        return "(no rows)"
    metrics = list(metrics or available_metrics(rows))  # any route order
    cost = [("shards", "shards_searched", "{:.2f}"), ("frac scored", "fraction_scored", "{:.3f}"),
            ("largest shard", "largest_shard_fraction", "{:.3f}"), ("route ms", "router_ms", "{:.2f}"),
            ("search ms p50", "search_ms_p50", "{:.2f}"), ("total ms p95", "total_ms_p95", "{:.2f}")]
    header = ["route", *metrics, *[c[0] for c in cost]]
    tested = next((r["significance"] for r in rows if "significance" in r), None)
    measure = next((m for m in metrics if tested and m in tested["measures"]), None)
    if tested is not None and measure is not None:  # the test against the baseline, for the first tested measure
        header += [f"vs {tested['baseline']} {measure}", "W/T/L"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["route"]]
        cells += [f"{row['metrics'][m]:.4f}" if m in row["metrics"] else "" for m in metrics]
        cells += [fmt.format(row["cost"][key]) if key in row["cost"] else "" for _, key, fmt in cost]
        if tested is not None and measure is not None:
            c = (row.get("significance") or {}).get("measures", {}).get(measure)
            cells += ([f"{c['verdict']} (p={c[row['significance']['test']]['p_holm']:.2g})",
                       f"{c['wins']}/{c['ties']}/{c['losses']}"] if c else ["", ""])
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
