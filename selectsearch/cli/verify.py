"""Check a built index thoroughly; print one line per problem (exit 2 if there is any).

Runs, on every shard: the checks `search` and `info` run on open (shard folders present,
doc_ids.txt rows = documents, offsets distinct and pointing at the right documents, file sizes
unchanged), the sha256 of the small files recorded in the manifest at build time (doc_ids.txt,
docs.offsets.npy, partition files; an index built before checksums were recorded says "no
checksums recorded"), every row's offset in the document store, Lucene's CheckIndex (every
file's checksum, then the index structure: flipped bytes in any Lucene file are found) and
Lucene's doc order against doc_ids.txt. Nothing is written into the index.

Problems go to stdout, one per line, as `shard 003 shards/003/doc_ids.txt: what is wrong`; a
damaged index exits with 2 and a one-line summary on stderr. The fix is to rebuild the index
(`selectsearch index SOURCE ... --out INDEX --overwrite`).

examples:
  selectsearch verify indexes/scifact-k16
  selectsearch verify indexes/scifact-k16 --json
  selectsearch verify indexes/scifact-k16 --no-lucene      # our files only; no JVM
"""

from __future__ import annotations

import argparse
import json
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("index", help="index folder")
    parser.add_argument("--json", action="store_true",
                        help='print {"index", "ok", "problems": [{"shard", "file", "message"}], "notes", "seconds"}')
    parser.add_argument("--no-lucene", action="store_true",
                        help="skip Lucene's CheckIndex (faster; no JVM): checks selectsearch's own files only")


def execute(args: argparse.Namespace) -> int:
    from selectsearch.errors import CorruptIndexError
    from selectsearch.index.integrity import verify_index

    started = time.time()
    problems, notes = verify_index(args.index, lucene=not args.no_lucene)
    seconds = round(time.time() - started, 2)
    if args.json:
        print(json.dumps({"index": args.index, "ok": not problems, "problems": [p.to_dict() for p in problems],
                          "notes": notes, "seconds": seconds}, indent=2))
    else:
        for problem in problems:
            print(problem)
        for note in notes:
            print(f"note: {note}")
        if not problems:
            print(f"{args.index}: no problems found ({seconds} s)")
    if problems:
        raise CorruptIndexError(f"{len(problems)} problem(s) in {args.index}; rebuild it with `selectsearch index "
                                f"... --out {args.index} --overwrite`")
    return 0
