"""Report of a quality benchmark: one README over every index of the definition that has results.

Read from the ``<out>/<index name>.json`` files alone, so runs with ``--only`` accumulate and
``--report-only`` rebuilds the report without evaluating anything.

Example:
    >>> from selectsearch.bench.report.quality import write_quality_report  # doctest: +SKIP
    >>> write_quality_report(load_definition("eval/benchmarks/scifact.toml"),  # doctest: +SKIP
    ...                      definition="eval/benchmarks/scifact.toml", out=Path("eval/results/scifact"),
    ...                      n_queries=300)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from selectsearch.bench.report import write_markdown
from selectsearch.bench.report.curves import markdown_table, targets_table

__all__ = ["write_quality_report"]


def write_quality_report(spec: Mapping[str, Any], *, definition: str, out: Path, n_queries: int) -> Path:
    """Write ``out/README.md``: per index, the command, partition balance, curves and tables."""
    split = spec.get("split", "test")
    measures = spec.get("measures", ["nDCG@10", "R@100", "R@1000"])
    k = int(spec.get("k", 1000))
    report = [f"# Benchmark: {spec['name']}", "",
              f"Data: {', '.join(spec['corpus'])}; queries and qrels: {spec['queries']} ({split}, "
              f"{n_queries} queries); measures {', '.join(measures)}; k={k}. Definition: `{definition}`.", ""]
    for idx in spec["index"]:
        file = out / f"{idx['name']}.json"
        if not file.exists():
            continue
        result = json.loads(file.read_text())
        rows = result["rows"]
        balance = result["partition"]["balance"]
        built = result.get("build_seconds")
        report += [f"## {idx['name']} ({idx.get('partitioner', 'kmeans')}, {idx['shards']} shards)", "",
                   f"Command: `{result['command']}` ({result['date']})", "",
                   f"Partition balance: max/mean {balance['max_over_mean']:.2f}, normalised entropy "
                   f"{balance['entropy_normalised']:.3f}. Evaluation took {result['eval_seconds']:.0f} s"
                   + (f", build {built:.0f} s." if built else " (index reused)."), "",
                   f"![curves]({idx['name']}.png)", "",
                   "Fraction of the collection scored at which each router first reaches 95% / 99% of "
                   "exhaustive quality (m = shards per query):", "", targets_table(rows), "",
                   markdown_table(rows, [*measures, "coverage", "coverage_auc", "overlap@10", "overlap@100"]), ""]
    return write_markdown(out / "README.md", report, end="")
