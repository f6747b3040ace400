"""How much the shifted-routing cells depend on which logged queries tune-route held out.

``eval/routing/shift.py`` tunes the fused router on validation splits of the logs drawn with one
seed; its acceptance cells (the default learned route's nDCG@10 minus the best classic router's at
no more documents scored) are one draw. Re-run with ``--tune-seed S`` for a few seeds, then this
script reads the reports and, per setting and budget, lists each seed's margin and documents
scored, with their mean, minimum and maximum; also the default route's test coverage AUC and the
weights each seed's topic split chose. Nothing is recomputed.

A cell whose margin changes sign between seeds is decided by the draw of validation queries, not
by the method: read the acceptance line against the spread, not one seed.

Example (from the repository root; ``--tune-folds 1`` for one draw of each split):
  for s in 0 1 2 3 4; do PYTHONPATH=. .venv/bin/python eval/routing/shift.py ../shared/data/scifact \\
      --work /tmp/seed$s --index /tmp/shift/scifact/index-k16 --tune-seed $s --tune-folds 10 \\
      --out eval/results/routing/seed-spread/shift-scifact-f10-seed$s; done
  PYTHONPATH=. .venv/bin/python eval/routing/seed_spread.py \\
      eval/results/routing/seed-spread/shift-scifact-f10-seed{0,1,2,3,4}.json \\
      --out eval/results/routing/seed-spread/scifact-folds
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from selectsearch.bench.report import write_json, write_markdown
from selectsearch.bench.script import command_line, script_parser

#: the default learned route's label in shift.py's reports that do not name it (before the shard ranker)
DEFAULT = "hybrid[gated]"


def margin(row: dict[str, Any]) -> float | None:
    """The default route minus the best classic router at no more documents, in nDCG@10 points."""
    if row.get("best_classic_ndcg10") is None:
        return None
    return 100.0 * (float(row["ndcg10"]) - float(row["best_classic_ndcg10"]))


def spread(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (setting, budget): every seed's margin and documents scored, and their range."""
    rows: list[dict[str, Any]] = []
    settings = [s["setting"] for s in reports[0]["settings"]]
    for name in settings:
        per_seed = [next(s for s in r["settings"] if s["setting"] == name) for r in reports]
        for i, first in enumerate(per_seed[0]["summary"]):
            cells = [s["summary"][i] for s in per_seed]
            margins = [margin(c) for c in cells]
            known = [m for m in margins if m is not None]
            rows.append({"setting": name, "budget": first["budget"],
                         "seeds": [r.get("tune_seed") or 0 for r in reports],
                         "margins": margins, "docs_frac": [float(c["docs_frac"]) for c in cells],
                         "best_classic": [c["best_classic_route"] for c in cells],
                         "mean": sum(known) / len(known) if known else None,
                         "min": min(known) if known else None, "max": max(known) if known else None})
        rows.append({"setting": name, "budget": "test AUC", "seeds": [r.get("tune_seed") or 0 for r in reports],
                     "auc": [float(s["test_auc"].get(r.get("default_route", DEFAULT), float("nan")))
                             for s, r in zip(per_seed, reports, strict=True)],
                     "weights": [s["tuning"]["topics"]["weights"] for s in per_seed],
                     "gated": [_gated(s["tuning"]["topics"].get("gating")) for s in per_seed]})
    return rows


def _gated(gating: dict[str, Any] | None) -> bool:
    """Whether a stored gate mixes the two weight vectors per query (not a constant one)."""
    from selectsearch.route.gating import Gating

    return gating is not None and Gating.from_dict(gating).constant is None


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("reports", type=Path, nargs="+", help="shift.py JSON reports of one collection, one per seed")
    parser.add_argument("--out", type=Path, required=True, help="OUT.json and OUT.md")
    args = parser.parse_args(argv)
    reports = [json.loads(p.read_text()) for p in args.reports]
    collections = {r["collection"] for r in reports}
    if len(collections) != 1:
        parser.error(f"reports of one collection only, got {sorted(collections)}")
    seeds = [r.get("tune_seed") or 0 for r in reports]
    if len(set(seeds)) != len(seeds):
        parser.error(f"one report per seed, got seeds {seeds}")
    rows = spread(reports)
    command = command_line(__file__, argv, prefix="PYTHONPATH=. " + sys.executable + " ")
    write_json(args.out.with_suffix(".json"), {"command": command, "collection": collections.pop(),
                                               "reports": [str(p) for p in args.reports], "rows": rows},
               indent=1, end="\n")
    head = " | ".join(f"seed {s}" for s in seeds)
    lines = [f"# Shifted routing cells against the tuning seed: {reports[0]['collection']}", "", "```sh", command,
             "```", "", f"Per cell: the default learned route (`{reports[0].get('default_route', DEFAULT)}`) minus "
             "the best classic router at no "
             "more documents scored, in nDCG@10 points (acceptance under shift: >= -0.5), for each seed of "
             "tune-route's validation splits (seed 0: tune-route's own); docs = its mean fraction of documents "
             "scored per seed. Last row per setting: the default route's test coverage AUC, and the weights "
             "(centroid, cori, knn) the topic split chose.", "",
             f"| setting | budget | {head} | mean | min .. max | docs per seed |",
             "|---|---|" + "---|" * len(seeds) + "---|---|---|"]
    for r in rows:
        if r["budget"] == "test AUC":
            cells = " | ".join(f"{a:.2f} ({'/'.join(f'{w:g}' for w in ws)}{', gated' if g else ''})"
                               for a, ws, g in zip(r["auc"], r["weights"], r["gated"], strict=True))
            lines.append(f"| {r['setting']} | test AUC | {cells} | | | |")
            continue
        cells = " | ".join(_fmt(m) for m in r["margins"])
        docs = " / ".join(f"{d:.3f}" for d in r["docs_frac"])
        lines.append(f"| {r['setting']} | {r['budget']} | {cells} | {_fmt(r['mean'])} | "
                     f"{_fmt(r['min'])} .. {_fmt(r['max'])} | {docs} |")
    write_markdown(args.out.with_suffix(".md"), lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
