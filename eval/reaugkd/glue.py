"""GLUE benchmark of ReAugKD: teacher, student alone, vanilla KD, ReAugKD without / with retrieval.

Per task (SST-2, MRPC, RTE, CoLA, STS-B; the GLUE dev set is the test set): a seeded slice of
the training set is held out as the dev split that chooses k and alpha (never the GLUE dev set);
a seeded subsample of the rest is the training set (CPU budget). The teacher is
all-MiniLM-L6-v2 fine-tuned on it; its outputs are computed once per task and cached
(``PrecomputedTeacher``). Students are the first 2 layers of the pre-trained all-MiniLM-L6-v2
(the teacher's starting point), trained side by side in the same run with the same budget:

- ``alone``: cross-entropy (MSE for STS-B) on gold labels only;
- ``kd``: Hinton KD (temperature T) + 0.5 x gold loss;
- ``reaugkd``: the same + lambda x relational loss; evaluated without (``reaugkd_noret``) and
  with retrieval (``reaugkd``, k/alpha chosen on the held-out slice by the task's GLUE score).
  ``kd`` and ``alone`` are also scored with retrieval from their own KB as an ablation.

Resumable: every finished (task, variant, seed) cell is appended to ``cells.jsonl``; a re-run
skips finished cells and rewrites ``glue.json``/``glue.md`` after each cell. Latency (batch 1,
retrieval on vs off interleaved on the same rows) is measured once per task on the seed-0
ReAugKD student.

Usage (1 torch thread; one job at a time):
  OMP_NUM_THREADS=1 nohup .venv/bin/python eval/reaugkd/glue.py \
      --out eval/results/reaugkd --work /work/models/reaugkd-glue > /work/logs/reaugkd/glue.log 2>&1 &
"""

from __future__ import annotations

import json
import logging
import math
import random
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from selectsearch.bench.measure import timed
from selectsearch.bench.script import script_parser

TASKS = ("sst2", "mrpc", "rte", "cola", "stsb")
DISPLAY = {"sst2": "SST-2", "mrpc": "MRPC", "rte": "RTE", "cola": "CoLA", "stsb": "STS-B"}
# task -> (train subsample, held-out dev slice, max_length, teacher epochs, student epochs, seeds);
# a subsample larger than the training set takes all of it (after the dev slice).
PLANS: dict[str, dict[str, tuple[int, int, int, float, float, int]]] = {
    # session 4: small subsamples, students from the PRE-TRAINED encoder's first 2 layers
    "s4": {
        "sst2": (1500, 300, 64, 2, 2, 1),
        "mrpc": (1000, 300, 128, 2, 2, 3),
        "rte": (600, 250, 128, 2, 2, 3),
        "cola": (1500, 300, 64, 2, 2, 1),
        "stsb": (1000, 300, 128, 2, 2, 3),
    },
    # session 6: whole MRPC/RTE training sets, 4,000 rows of the others; students from the
    # FINE-TUNED teacher's first 2 layers (the default student)
    "v2": {
        "sst2": (4000, 300, 64, 2, 2, 1),
        "mrpc": (10**6, 300, 128, 2, 2, 3),
        "rte": (10**6, 250, 128, 2, 2, 3),
        "cola": (4000, 300, 64, 2, 2, 1),
        "stsb": (4000, 300, 128, 2, 2, 3),
    },
}
PLAN = dict(PLANS["s4"])
STUDENT_INIT = {"s4": "pretrained", "v2": "teacher"}
VARIANTS = ("alone", "kd", "reaugkd")
SPLIT_SEED = 1234
log = logging.getLogger("reaugkd.glue")


def split_task(task: Any, n_train: int, n_dev: int) -> tuple[list[Any], list[Any]]:
    """Seeded: the first ``n_dev`` of a shuffled train set are the selection dev split, the next
    ``n_train`` the training subsample."""
    order = list(range(len(task.train)))
    random.Random(SPLIT_SEED).shuffle(order)
    dev = [task.train[i] for i in order[:n_dev]]
    train = [task.train[i] for i in order[n_dev : n_dev + n_train]]
    return train, dev


def teacher_for(
    name: str, task: Any, train: list[Any], dev: list[Any], work: Path, max_len: int, epochs: float, init: str
) -> Any:
    """Fine-tune (or reload) the teacher and cache its outputs on train + dev + test.

    ``init="teacher"``: students start from the fine-tuned teacher's first layers;
    ``"pretrained"``: from the pre-trained encoder the teacher was fine-tuned from."""
    from selectsearch.distill import PrecomputedTeacher, teacher_from_classifier
    from selectsearch.models.classifier_config import ModelConfig, TrainConfig
    from selectsearch.models.classifier_training import train_classifier
    from selectsearch.models.text_classifier import TextClassifier

    folder = work / name / "teacher"
    cache = work / name / "teacher_outputs.npz"
    if cache.exists():
        return PrecomputedTeacher.load(cache), json.loads((work / name / "teacher_info.json").read_text())
    c0, w0 = time.process_time(), time.perf_counter()
    if (folder / "config.json").exists():
        clf = TextClassifier.load(folder)
    else:
        slots = ("text_a", "text_b") if task.pair else ("text",)
        cfg = ModelConfig(
            method="finetune", kind=task.kind, label_names=tuple(task.label_names), slots=slots, max_length=max_len
        )
        bs = 16
        steps = math.ceil(epochs * len(train) / bs)
        tc = TrainConfig(steps=steps, batch_size=bs, learning_rate=1e-4, head_learning_rate=1e-3, seed=0)
        log.info("%s: fine-tuning the teacher for %d steps", name, steps)
        clf = train_classifier(train, cfg, tc)
        clf.save(folder, overwrite=True)
    train_cpu = time.process_time() - c0
    teacher = teacher_from_classifier(clf, encoder_dir=folder / "encoder" if init == "teacher" else None)
    pt = PrecomputedTeacher.from_teacher(teacher, list(train) + list(dev) + list(task.test))
    pt.save(cache)
    # teacher latency (batch 1) on the first 100 test rows
    rows = task.test[:100]
    t0 = time.perf_counter()
    for r in rows:
        teacher.embed_predict([r])
    info = {
        "teacher_cpu_s": time.process_time() - c0,
        "teacher_train_cpu_s": train_cpu,
        "teacher_wall_s": time.perf_counter() - w0,
        "teacher_ms_per_row_b1": (time.perf_counter() - t0) * 1000 / len(rows),
        "test": scores(task, pt.embed_predict(task.test)[1]),
    }
    (work / name / "teacher_info.json").write_text(json.dumps(info))
    return pt, info


def metric_fn(task: Any) -> Any:
    from selectsearch.data.classification import compute_metrics

    def metric(mixed: np.ndarray, labels: np.ndarray | None, teacher: np.ndarray) -> float:
        assert labels is not None
        pred = mixed[:, 0] if task.kind == "regression" else mixed.argmax(axis=1)
        return compute_metrics(task, pred, labels)["score"]

    return metric


def scores(task: Any, out: np.ndarray) -> dict[str, float]:
    from selectsearch.data.classification import compute_metrics

    gold = [e.label for e in task.test]
    pred = out[:, 0] if task.kind == "regression" else out.argmax(axis=1)
    return compute_metrics(task, pred, gold)


def latency(student: Any, rows: list[Any], repeats: int = 1) -> dict[str, float]:
    """Batch-1 ms/row with retrieval off and on, interleaved row by row (same load for both)."""
    off: list[float] = []
    on: list[float] = []
    alpha = student.alpha if student.alpha < 1.0 else 0.5  # time the retrieval path even if dev chose alpha=1
    for _ in range(repeats):
        for r in rows:
            for mode, acc in ((False, off), (True, on)):
                acc.append(timed(student.predict, [r], retrieval=mode, alpha=alpha if mode else 1.0)[1])
    # the retrieval step alone
    emb = student.embed(rows)
    t0 = time.perf_counter()
    for i in range(len(rows)):
        s, ids = student.kb.search(emb[i : i + 1], student.k)
        student.kb.aggregate(s, ids, tau=student.tau_kb)
    search_ms = (time.perf_counter() - t0) * 1000 / len(rows)
    return {
        "ms_off_mean": float(np.mean(off)),
        "ms_on_mean": float(np.mean(on)),
        "ms_off_median": float(np.median(off)),
        "ms_on_median": float(np.median(on)),
        "search_ms_mean": search_ms,
        "overhead_pct_median": 100 * (float(np.median(on)) / float(np.median(off)) - 1),
        "overhead_pct_search": 100 * search_ms / float(np.median(off)),
        "rows": len(rows) * repeats,
    }


def run_cell(
    name: str,
    task: Any,
    teacher: Any,
    train: list[Any],
    dev: list[Any],
    variant: str,
    seed: int,
    max_len: int,
    epochs: float,
    work: Path,
) -> dict[str, Any]:
    from selectsearch.distill import DistillConfig, distill

    base = DistillConfig(
        layers=2,
        max_length=max_len,
        epochs=epochs,
        lr=2e-4,
        head_lr=1e-3,
        batch_size=16,
        temperature=2.0,
        kd_weight=1.0,
        lambda_rel=1.0,
        ce_weight=0.5,
        rel_negatives=64,
        seed=seed,
        threads=1,
    )
    cfg = {
        "alone": replace(base, kd_weight=0.0, lambda_rel=0.0, ce_weight=1.0),
        "kd": replace(base, lambda_rel=0.0),
        "reaugkd": base,
    }[variant]
    c0, w0 = time.process_time(), time.perf_counter()
    student = distill(
        teacher,
        train,
        dev,
        train_labels=[e.label for e in train],
        dev_labels=[e.label for e in dev],
        config=cfg,
        metric=metric_fn(task),
    )
    train_cpu = time.process_time() - c0
    noret = student.predict(task.test, retrieval=False)
    ret = student.predict(task.test, retrieval=True)
    cell: dict[str, Any] = {
        "task": name,
        "variant": variant,
        "seed": seed,
        "k": student.k,
        "alpha": student.alpha,
        "test_noret": scores(task, noret),
        "test_ret": scores(task, ret),
        "dev_best": student.extra["dev_best"],
        "dev_student_alone": student.extra["dev_student_alone"],
        "cpu_s": train_cpu,
        "wall_s": time.perf_counter() - w0,
        "n_train": len(train),
        "n_dev": len(dev),
        "config": {k: v for k, v in vars(cfg).items()},
        "last_loss": student.extra["train_loss"][-1] if student.extra["train_loss"] else None,
    }
    if variant == "reaugkd" and seed == 0:
        cell["latency"] = latency(student, list(task.test[:150]))
        student.save(work / name / "reaugkd-seed0", command=" ".join(map(shlex.quote, sys.argv)))
    return cell


def summarise(
    cells: list[dict[str, Any]], teachers: dict[str, dict[str, Any]], command: str, out: Path, plan: str
) -> None:
    """Rewrite glue.json and glue.md from the finished cells."""
    rows: dict[str, dict[str, list[float]]] = {}
    detail: dict[str, dict[str, list[dict[str, float]]]] = {}

    def add(task: str, col: str, metrics: dict[str, float]) -> None:
        rows.setdefault(task, {}).setdefault(col, []).append(metrics["score"])
        detail.setdefault(task, {}).setdefault(col, []).append(metrics)

    for t, info in teachers.items():
        add(t, "teacher", info["test"])
    # a seed counts only once all three variants finished it (an interrupted run compares like with like)
    variants_done: dict[tuple[str, int], set[str]] = {}
    for c in cells:
        variants_done.setdefault((c["task"], c["seed"]), set()).add(c["variant"])
    cells = [c for c in cells if variants_done[(c["task"], c["seed"])] >= set(VARIANTS)]
    for c in cells:
        t = c["task"]
        if c["variant"] == "alone":
            add(t, "alone", c["test_noret"])
            add(t, "alone+ret", c["test_ret"])
        elif c["variant"] == "kd":
            add(t, "kd", c["test_noret"])
            add(t, "kd+ret", c["test_ret"])
        else:
            add(t, "reaugkd_noret", c["test_noret"])
            add(t, "reaugkd", c["test_ret"])
    cols = ["alone", "kd", "reaugkd_noret", "reaugkd", "teacher", "alone+ret", "kd+ret"]
    means = {t: {c: float(np.mean(v)) for c, v in d.items()} for t, d in rows.items()}
    stds = {t: {c: float(np.std(v)) for c, v in d.items()} for t, d in rows.items()}
    tasks = [t for t in TASKS if t in means]
    complete = [t for t in tasks if all(c in means[t] for c in ("alone", "kd", "reaugkd", "teacher"))]
    avg = {
        c: float(np.mean([means[t][c] for t in complete]))
        for c in cols
        if complete and all(c in means[t] for t in complete)
    }
    verdict: dict[str, Any] = {}
    if {"alone", "kd", "reaugkd", "teacher"} <= set(avg):
        gap = avg["teacher"] - avg["alone"]
        verdict = {
            "tasks_in_average": complete,
            "reaugkd_beats_kd": avg["reaugkd"] > avg["kd"],
            "gap_closed_fraction": (avg["reaugkd"] - avg["alone"]) / gap if gap else None,
            "kd_gap_closed_fraction": (avg["kd"] - avg["alone"]) / gap if gap else None,
        }
    lat = {c["task"]: c["latency"] for c in cells if "latency" in c}
    result = {
        "command": command,
        "plan": plan,
        "plan_sizes": PLAN,
        "student_init": STUDENT_INIT[plan],
        "split_seed": SPLIT_SEED,
        "mean": means,
        "std": stds,
        "metrics": detail,
        "average": avg,
        "verdict": verdict,
        "latency": lat,
        "teachers": teachers,
        "seeds": {t: sorted({c["seed"] for c in cells if c["task"] == t}) for t in tasks},
        "cpu_s_total": float(
            sum(c["cpu_s"] for c in cells) + sum(i.get("teacher_cpu_s", 0.0) for i in teachers.values())
        ),
        "k_alpha": {f"{c['task']}/{c['variant']}/{c['seed']}": [c["k"], c["alpha"]] for c in cells},
    }
    (out / "glue.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        "# ReAugKD on GLUE (dev sets as test)",
        "",
        f"Command: `{command}`",
        "",
        "Score = the task's GLUE metric (SST-2/RTE accuracy, MRPC mean of F1 and accuracy, CoLA Matthews,",
        "STS-B mean of Pearson and Spearman), x100, mean ± std over seeds (n = seeds). Students: 2",
        "transformer layers (initialisation below); teacher: all-MiniLM-L6-v2 fine-tuned on the same",
        "training subsample. k/alpha chosen on a held-out slice of train. `+ret` columns: ablation",
        "(retrieval from the student's own KB without the relational loss).",
        "",
        f"Plan `{plan}`: students start from the first 2 layers of the "
        + ("fine-tuned teacher." if STUDENT_INIT[plan] == "teacher" else "pre-trained encoder."),
        "Budget (2 shared CPU cores, 1 torch thread): per task a seeded training subsample (n_train) and a",
        "held-out slice of train for k/alpha (SST-2 300, MRPC 300, RTE 250, CoLA 300, STS-B 300); teacher and",
        "students 2 epochs, batch 16, max_length 64 (single sentences) / 128 (pairs); students lr 2e-4, KD T=2,",
        "gold-loss weight 0.5 (KD variants), lambda_rel 1, tau = tau_t = tau_s = tau_kb = 0.1, 64 sampled KB",
        "columns in L_rel. Extra seeds only for MRPC, RTE and STS-B (SST-2 and CoLA: seed 0); a seed is",
        "counted once all three student variants finished it.",
        "",
        "| task | n_train | seeds | alone | vanilla KD | ReAugKD no-ret | ReAugKD | teacher | alone+ret | KD+ret |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in tasks:
        n = next((x["n_train"] for x in cells if x["task"] == t), PLAN[t][0])
        seeds = len({x["seed"] for x in cells if x["task"] == t})
        vals = []
        for c in cols:
            s = "–"
            if c in means[t]:
                s = f"{means[t][c]:.1f}" + (f" ± {stds[t][c]:.1f}" if len(rows[t][c]) > 1 else "")
            vals.append(s)
        lines.append(f"| {DISPLAY[t]} | {n} | {seeds} | " + " | ".join(vals) + " |")
    if avg:
        lines.append(
            f"| **average ({len(complete)} tasks)** | | | "
            + " | ".join(f"**{avg[c]:.1f}**" if c in avg else "–" for c in cols)
            + " |"
        )
    if verdict and verdict["gap_closed_fraction"] is not None:
        lines += [
            "",
            f"Targets: ReAugKD > vanilla KD on the average: **{verdict['reaugkd_beats_kd']}**; fraction of the "
            f"student-alone → teacher gap closed by ReAugKD: **{verdict['gap_closed_fraction']:.2f}** "
            f"(target ≥ 0.5; vanilla KD: {verdict['kd_gap_closed_fraction']:.2f}).",
        ]
    if lat:
        lines += [
            "",
            "Latency of the ReAugKD student (batch 1, 150 test rows, retrieval off/on interleaved row by row, "
            "1 thread):",
            "",
            "| task | ms/row off (median) | ms/row on (median) | overhead (medians) | KB search+mix ms "
            "| overhead (search/off) |",
            "|---|---|---|---|---|---|",
        ]
        for t in tasks:
            if t in lat:
                x = lat[t]
                lines.append(
                    f"| {DISPLAY[t]} | {x['ms_off_median']:.2f} | {x['ms_on_median']:.2f} | "
                    f"{x['overhead_pct_median']:+.1f}% | {x['search_ms_mean']:.3f} | {x['overhead_pct_search']:.1f}% |"
                )
    lines += ["", f"CPU seconds used (training + teacher): {result['cpu_s_total']:.0f}.", ""]
    (out / "glue.md").write_text("\n".join(lines))


def _read_cells(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def _read_teachers(work: Path) -> dict[str, dict[str, Any]]:
    """Every task's teacher info under ``work`` (also those another process of this plan trained)."""
    infos = {
        t: json.loads((work / t / "teacher_info.json").read_text())
        for t in TASKS
        if (work / t / "teacher_info.json").exists()
    }
    return {t: i for t, i in infos.items() if "test" in i}


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("--out", type=Path, default=Path("eval/results/reaugkd"))
    parser.add_argument("--work", type=Path, default=Path("/work/models/reaugkd-glue"))
    parser.add_argument("--plan", choices=sorted(PLANS), default="s4", help="sizes and student init (see PLANS)")
    parser.add_argument("--tasks", nargs="*", default=list(TASKS))
    parser.add_argument("--max-seeds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, 60 test rows (checks the script)")
    args = parser.parse_args(argv)
    PLAN.clear()
    PLAN.update(PLANS[args.plan])
    if args.smoke:
        for t, p in list(PLAN.items()):
            PLAN[t] = (48, 24, p[2], 0.5, 0.5, 1)
    import torch

    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from selectsearch.data.classification import load_task

    command = "OMP_NUM_THREADS=1 .venv/bin/python " + " ".join(map(shlex.quote, sys.argv))
    args.out.mkdir(parents=True, exist_ok=True)
    cells_path = args.out / "glue_cells.jsonl"

    def refresh() -> None:
        # several processes (one per task group) may share --out and --work: summarise from the files
        summarise(_read_cells(cells_path), _read_teachers(args.work), command, args.out, args.plan)

    done = {(c["task"], c["variant"], c["seed"]) for c in _read_cells(cells_path)}
    loaded: dict[str, Any] = {}
    # seed 0 of every task first, then the extra seeds of the small tasks
    for seed in range(args.max_seeds):
        for name in args.tasks:
            n_train, n_dev, max_len, t_ep, s_ep, n_seeds = PLAN[name]
            if seed >= n_seeds:
                continue
            if name not in loaded:
                task = load_task(name)
                if args.smoke:
                    task.test = task.test[:60]
                train, dev = split_task(task, n_train, n_dev)
                teacher, info = teacher_for(name, task, train, dev, args.work, max_len, t_ep, STUDENT_INIT[args.plan])
                loaded[name] = (task, train, dev, teacher)
                log.info("%s teacher (%d training rows): %s", name, len(train), info["test"])
                refresh()
            task, train, dev, teacher = loaded[name]
            for variant in VARIANTS:
                if (name, variant, seed) in done:
                    continue
                log.info("%s %s seed %d ...", name, variant, seed)
                cell = run_cell(name, task, teacher, train, dev, variant, seed, max_len, s_ep, args.work)
                log.info(
                    "%s %s seed %d: no-ret %.2f ret %.2f (k=%d alpha=%.1f) cpu %.0fs",
                    name,
                    variant,
                    seed,
                    cell["test_noret"]["score"],
                    cell["test_ret"]["score"],
                    cell["k"],
                    cell["alpha"],
                    cell["cpu_s"],
                )
                with cells_path.open("a") as f:
                    f.write(json.dumps(cell) + "\n")
                done.add((name, variant, seed))
                refresh()
    refresh()
    log.info("all cells done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
