"""Write a synthetic collection of N documents that follows SciFact + Wikipedia, SciFact mixed in.

Fits (or loads, with --model) a seeded topic model on the real passages and writes a BEIR folder:
N synthetic passages (ids syn-0000001 ..., empty titles) with the judged collection's real
documents at seeded random positions, its queries.jsonl and qrels/*.tsv copied, and a sidecar
generation.json (seed, sizes, model parameters, real-vs-synthetic statistics). The method and
its limits: selectsearch/bench/synth.py and eval/results/scale-5m/README.md. Progress goes to
stderr; the output is written under OUT.partial and renamed at the end.

Usage:
  PYTHONPATH=$PWD .venv/bin/python eval/scale/generate.py --docs 1000000 --out /work/scale-data/syn-1m \\
      --model /work/scale-data/topic-model --report eval/results/scale-5m/syn-1m
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from selectsearch.bench.script import command_line, data_root, script_parser

FIT_FLAGS = {"topics": "--topics", "fit_docs": "--fit-docs", "fit_vocab": "--fit-vocab", "passes": "--passes",
             "batch_size": "--batch-size", "min_df": "--min-df", "threads": "--threads"}


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("--docs", type=int, required=True, help="synthetic documents to write")
    parser.add_argument("--out", type=Path, required=True, help="output BEIR folder (outside the repository)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the fit and the generation (default 0)")
    parser.add_argument("--model", type=Path, help="topic-model folder: loaded when it exists, else fitted and saved")
    parser.add_argument("--fit", nargs="+", help="real corpus sources to fit on (default: DATA/scifact DATA/wikipedia)")
    parser.add_argument("--judged", type=Path, help="BEIR folder whose documents are mixed in and whose queries and "
                                                    "qrels are copied (default: DATA/scifact)")
    parser.add_argument("--split", default="test", help="queries whose term statistics are reported (default test)")
    parser.add_argument("--topics", type=int, help="LDA topics (default 200)")
    parser.add_argument("--fit-docs", type=int, help="documents sampled for the LDA fit (default 50000)")
    parser.add_argument("--fit-vocab", type=int, help="content terms the LDA fit sees (default 50000)")
    parser.add_argument("--passes", type=int, help="online LDA passes over the sample (default 5)")
    parser.add_argument("--batch-size", type=int, help="documents per online update (default 512)")
    parser.add_argument("--min-df", type=int, help="generate only terms in at least this many real documents "
                                                   "(default 1)")
    parser.add_argument("--threads", type=int, help="LDA worker processes (default 2)")
    parser.add_argument("--chunk-docs", type=int, default=20_000, help="documents generated at once (the output "
                                                                      "depends on it; default 20000)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    parser.add_argument("--pause-while", type=Path, help="wait between steps while this file exists "
                                                         "(e.g. /tmp/BENCH_RUNNING)")
    parser.add_argument("--report", type=Path, help="also write REPORT.json (the sidecar) and REPORT.md "
                                                    "(the fidelity table)")
    args = parser.parse_args(argv)
    if args.docs < 1:
        parser.error("--docs must be >= 1")

    from selectsearch.atomic import interrupt_on_sigterm

    try:
        with interrupt_on_sigterm():  # a terminated run removes its OUT.partial, as Ctrl-C does
            return _run(args, argv)
    except KeyboardInterrupt as e:
        print(f"interrupted ({e or 'Ctrl-C'}); nothing written", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace, argv: list[str] | None) -> int:
    from selectsearch.bench.report import write_result
    from selectsearch.bench.synth import (
        FitOptions,
        TopicModel,
        fidelity_table,
        fit_topic_model,
        stderr_log,
        write_collection,
    )
    from selectsearch.errors import SelectSearchError

    command = command_line(__file__, argv)
    data = data_root()
    given = {name: getattr(args, name) for name in FIT_FLAGS if getattr(args, name) is not None}
    try:
        if args.model is not None and (args.model / "config.json").is_file():
            model = TopicModel.load(args.model)
            differ = [FIT_FLAGS[k] for k, v in given.items() if getattr(model.options, k) != v]
            if args.fit is not None or differ or model.options.seed != args.seed:
                what = ", ".join(differ + (["--fit"] if args.fit is not None else [])
                                 + (["--seed"] if model.options.seed != args.seed else []))
                raise SelectSearchError(f"{args.model} was fitted with other settings ({what}); use another --model "
                                        "or leave those options out")
            stderr_log(f"model: loaded {args.model} ({model.n_topics} topics, {model.n_terms:,} terms)")
        else:
            options = FitOptions(seed=args.seed, **{"threads": 2, **given})
            sources = args.fit or [str(data / "scifact"), str(data / "wikipedia")]
            model = fit_topic_model(sources, options, log=stderr_log, pause_file=args.pause_while)
            if args.model is not None:
                model.save(args.model, command=command)
                stderr_log(f"model: saved {args.model}")
        sidecar = write_collection(model, args.out, docs=args.docs, judged=args.judged or data / "scifact",
                                   seed=args.seed, split=args.split, chunk_docs=args.chunk_docs,
                                   overwrite=args.overwrite, log=stderr_log, command=command,
                                   pause_file=args.pause_while,
                                   extra={"model_folder": str(args.model) if args.model else None})
    except SelectSearchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    lines = fidelity_table(sidecar)
    if args.report is not None:
        write_result(args.report, sidecar, [f"`{command}`", "", *lines], echo=False)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
