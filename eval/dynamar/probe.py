"""How good is each frozen representation of the encoder as a few-shot feature? (issue 7)

DynaMaR reads the encoder's hidden state at a template's ``[MASK]``; standard fine-tuning reads the
mean-pooled output. This probe trains no encoder weight: it fits a logistic regression on the
frozen features of the same few-shot training samples as ``fewshot.toml`` (same k, seeds and test
subsample) and scores the test set, for

- ``mean``: mean-pooled output of the plain text (fine-tuning's input, how all-MiniLM-L6-v2 was trained);
- ``cls``: the ``[CLS]`` state of the plain text;
- ``mask``: the ``[MASK]`` state of the first template of DynaMaR's pool (single-template inference);
- ``mask-pool``: the mean of the ``[MASK]`` states over the M = 4 templates of the pool.

A representation that is a poor feature before training is where the few-shot runs start from.

Usage (from the repository root)::

    .venv/bin/python eval/dynamar/probe.py eval/dynamar/fewshot.toml --out eval/results/dynamar/probe
"""

from __future__ import annotations

import json
import random
import shlex
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

from selectsearch.bench.definition import load_definition
from selectsearch.bench.report import write_json, write_markdown
from selectsearch.bench.script import command_line, script_parser

REPRESENTATIONS = ("mean", "cls", "mask", "mask-pool")


def features(clf: Any, rows: list[Any], view: int, *, mask: bool, batch_size: int = 64) -> dict[str, np.ndarray]:
    """Frozen ``(n, d)`` features of ``rows``: ``{"mask": ...}`` through a prompt view, else mean and cls."""
    import torch

    from selectsearch.models.encoder import mean_pool

    encoder = clf.model.encoder
    out: dict[str, list[np.ndarray]] = {}
    with torch.inference_mode():
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            batch = clf.batcher.batch(chunk, view=view) if mask else clf.batcher.batch(chunk)
            hidden = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
            if mask:
                idx = torch.arange(hidden.shape[0])
                out.setdefault("mask", []).append(hidden[idx, batch["mask_positions"]].numpy())
            else:
                out.setdefault("mean", []).append(mean_pool(hidden, batch["attention_mask"]).numpy())
                out.setdefault("cls", []).append(hidden[:, 0].numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def probe_score(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    """Logistic regression on standardised features (statistics of the training sample)."""
    from sklearn.linear_model import LogisticRegression

    mu, sd = train_x.mean(axis=0), train_x.std(axis=0) + 1e-6
    model = LogisticRegression(max_iter=2000, C=1.0)
    model.fit((train_x - mu) / sd, train_y)
    pred: np.ndarray = model.predict((test_x - mu) / sd)
    return pred


def main(argv: list[str] | None = None) -> int:
    """Run the probe over the classification tasks of the definition; write OUT.json and OUT.md."""
    parser = script_parser(__doc__)
    parser.add_argument("config", type=Path, help="few-shot benchmark definition (TOML)")
    parser.add_argument("--out", type=Path, required=True, help="OUT.json and OUT.md")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from selectsearch.data.classification import as_rows, compute_metrics, load_task
    from selectsearch.models.classifier_config import ModelConfig
    from selectsearch.models.classifier_training import sample_few_shot
    from selectsearch.models.encoder import load_encoder
    from selectsearch.models.text_classifier import TextClassifier

    cfg = load_definition(args.config, kind="fewshot")
    encoder = load_encoder(cfg.get("encoder"))
    results: dict[str, dict[str, list[float]]] = {}
    for name in cfg["tasks"]:
        task = load_task(name)
        if task.kind != "classification":
            continue  # STS-B: the probe is a classifier
        test = list(task.test)
        if len(test) > cfg["max_test"]:
            test = random.Random(cfg.get("test_seed", 0)).sample(test, cfg["max_test"])
        pair = task.pair
        common = {"kind": task.kind, "label_names": tuple(task.label_names),
                  "slots": ("text_a", "text_b") if pair else ("text",),
                  "max_length": cfg["max_length_pair"] if pair else cfg["max_length"]}
        plain = TextClassifier.create(ModelConfig(method="finetune", **common), encoder=encoder)
        prompt = TextClassifier.create(ModelConfig(method="dynamar", pool_size=cfg.get("pool_size", 4), **common),
                                       encoder=encoder)
        test_rows = as_rows(test)
        test_feats = features(plain, test_rows, 0, mask=False)
        test_masks = [features(prompt, test_rows, v, mask=True)["mask"] for v in range(len(prompt.pool))]
        test_feats["mask"], test_feats["mask-pool"] = test_masks[0], np.mean(test_masks, axis=0)
        gold = [e.label for e in test]
        for seed in cfg["seeds"]:
            train = sample_few_shot(task.train, k=cfg["k"], kind=task.kind, seed=seed)
            rows = as_rows(train)
            train_feats = features(plain, rows, 0, mask=False)
            masks = [features(prompt, rows, v, mask=True)["mask"] for v in range(len(prompt.pool))]
            train_feats["mask"], train_feats["mask-pool"] = masks[0], np.mean(masks, axis=0)
            y = np.array([e.label for e in train])
            for rep in REPRESENTATIONS:
                pred = probe_score(train_feats[rep], y, test_feats[rep])
                score = compute_metrics(task, pred.tolist(), gold)["score"]
                results.setdefault(name, {}).setdefault(rep, []).append(float(score))
            print(json.dumps({"task": name, "seed": seed, **{r: round(results[name][r][-1], 1)
                                                               for r in REPRESENTATIONS}}), file=sys.stderr, flush=True)
    summary = {t: {r: {"mean": statistics.fmean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0, "values": v}
                   for r, v in reps.items()} for t, reps in results.items()}
    avg = {r: statistics.fmean(summary[t][r]["mean"] for t in summary) for r in REPRESENTATIONS}
    command = command_line(__file__, argv, prefix=shlex.quote(sys.executable) + " ")
    write_json(args.out.with_suffix(".json"), {"command": command, "settings": cfg, "tasks": summary, "average": avg},
               indent=1, end="\n")
    lines = [f"Produced by `{command}`.", "",
             "Frozen encoder, logistic regression on the few-shot sample (same k, seeds and test sample as the "
             "few-shot table); mean ± std over seeds.", "",
             "| task | " + " | ".join(REPRESENTATIONS) + " |", "|---|" + "---|" * len(REPRESENTATIONS)]
    for t, reps in summary.items():
        lines.append(f"| {t} | " + " | ".join(f"{reps[r]['mean']:.1f} ± {reps[r]['std']:.1f}"
                                                for r in REPRESENTATIONS) + " |")
    lines.append("| **average** | " + " | ".join(f"**{avg[r]:.1f}**" for r in REPRESENTATIONS) + " |")
    write_markdown(args.out.with_suffix(".md"), lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
