"""Few-shot / pool-size benchmark for DynaMaR vs standard fine-tuning.

Usage (from the repository root)::

    .venv/bin/python eval/dynamar/bench.py eval/dynamar/fewshot.toml \
        --out eval/results/dynamar/fewshot.jsonl [--part 0/2]

Each finished run appends one JSON line to ``--out`` (runs already there are skipped, so an
interrupted benchmark resumes). ``--part i/n`` runs every n-th job, for parallel workers.
``k = 0`` (and ``k_regression = 0``) in the definition trains on the whole training split.
``eval/dynamar/report.py`` turns the JSON lines into the JSON summary and Markdown table.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

from selectsearch.bench.definition import load_definition
from selectsearch.bench.measure import Stopwatch
from selectsearch.bench.script import script_parser


def _jobs(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    jobs = []
    for task in cfg["tasks"]:
        for seed in cfg["seeds"]:
            for method in cfg["methods"]:
                sizes = cfg.get("pool_sizes", [cfg.get("pool_size", 4)]) if method == "dynamar" else [0]
                for m in sizes:
                    jobs.append({"task": task, "seed": seed, "method": method, "pool_size": m})
    return jobs


def _key(job: dict[str, Any]) -> tuple[Any, ...]:
    return (job["task"], job["seed"], job["method"], job["pool_size"])


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark definition; return 0."""
    parser = script_parser(__doc__)
    parser.add_argument("config", type=Path, help="benchmark definition (TOML)")
    parser.add_argument("--out", type=Path, required=True, help="JSON lines, one per run (appended)")
    parser.add_argument(
        "--part",
        default="0/1",
        help="i/n: run the (task, seed) groups i, i+n, i+2n, ... (parallel workers)",
    )
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from selectsearch.data.classification import compute_metrics, load_task
    from selectsearch.models.classifier_config import ModelConfig, TrainConfig
    from selectsearch.models.classifier_training import sample_few_shot, train_classifier
    from selectsearch.models.encoder import load_encoder

    cfg = load_definition(args.config, kind="fewshot")
    part, nparts = (int(x) for x in args.part.split("/"))
    # runs already in any part file of this output (e.g. fewshot.part*.jsonl) are skipped
    done = set()
    stem = args.out.name.split(".part")[0]
    for path in sorted({args.out, *args.out.parent.glob(f"{stem}.part*.jsonl")}):
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    done.add(_key(json.loads(line)))
    # seed-major order: an interrupted run leaves every task with the same seeds done
    groups = sorted(
        {(j["task"], j["seed"]) for j in _jobs(cfg)},
        key=lambda g: (cfg["seeds"].index(g[1]), cfg["tasks"].index(g[0])),
    )
    mine = {g: i for i, g in enumerate(groups) if i % nparts == part}
    jobs = [j for j in _jobs(cfg) if (j["task"], j["seed"]) in mine and _key(j) not in done]
    jobs.sort(key=lambda j: mine[(j["task"], j["seed"])])
    print(f"{len(jobs)} runs to do", file=sys.stderr, flush=True)
    tasks: dict[str, Any] = {}
    for job in jobs:
        name = job["task"]
        if name not in tasks:
            task = load_task(name)
            test = list(task.test)
            sub = len(test) > cfg["max_test"]
            if sub:
                test = random.Random(cfg.get("test_seed", 0)).sample(test, cfg["max_test"])
            tasks[name] = (task, test, sub)
        task, test, sub = tasks[name]
        k = cfg["k_regression"] if task.kind == "regression" else cfg["k"]
        # k = 0: the whole training split (full-data runs; the step budget bounds the cost)
        train = sample_few_shot(task.train, k=k, kind=task.kind, seed=job["seed"]) if k else list(task.train)
        pair = task.pair
        mcfg = ModelConfig(
            method=job["method"],
            kind=task.kind,
            label_names=tuple(task.label_names),
            slots=("text_a", "text_b") if pair else ("text",),
            max_length=cfg["max_length_pair"] if pair else cfg["max_length"],
            pool_size=max(1, job["pool_size"]),
            pooling=cfg.get("pooling", "mean"),
        )
        tcfg = TrainConfig(
            steps=cfg["steps"],
            batch_size=cfg["batch_size"],
            learning_rate=cfg["learning_rate"],
            head_learning_rate=cfg["head_learning_rate"],
            seed=job["seed"],
        )
        with Stopwatch() as train_time:
            clf = train_classifier(train, mcfg, tcfg, encoder=load_encoder(cfg.get("encoder")))
        with Stopwatch() as eval_time:
            outs = clf.view_outputs(test, batch_size=64)
        gold = [e.label for e in test]
        per_view = [compute_metrics(task, clf.decide(outs[v]), gold)["score"] for v in range(outs.shape[0])]
        pool = compute_metrics(task, clf.decide(outs.mean(axis=0)), gold)
        single = compute_metrics(task, clf.decide(outs[0]), gold)
        rec = {
            **job,
            "kind": task.kind,
            "n_train": len(train),
            "n_test": len(test),
            "test_subsampled": sub,
            "metrics_pool": pool,
            "metrics_single": single,
            "score_pool": pool["score"],
            "score_single": single["score"],
            "score_per_template": per_view,
            "templates": [t.source for t in clf.pool],
            "train_s": round(train_time.wall_s, 2),
            "eval_s": round(eval_time.wall_s, 2),
            "model_config": {k2: v for k2, v in mcfg.__dict__.items()},
            "train_config": tcfg.__dict__,
        }
        print(
            json.dumps(
                {
                    k2: rec[k2]
                    for k2 in (
                        "task",
                        "seed",
                        "method",
                        "pool_size",
                        "score_single",
                        "score_pool",
                        "train_s",
                        "eval_s",
                    )
                }
            ),
            file=sys.stderr,
            flush=True,
        )
        with args.out.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        del clf
    return 0


if __name__ == "__main__":
    sys.exit(main())
