#!/bin/sh
# Issue 5 (and the 205k rows of issue 4): SciFact + 200k Wikipedia, 32 shards, routed dense vs FAISS IVF.
# Each step is skipped when its output exists; the embedding (about 70 min of an idle 2-core machine
# in bf16) resumes where an interrupted run stopped.
#   sh eval/dense/run_sfwiki205k.sh
set -e
S=.venv/bin/selectsearch
D=${SELECTSEARCH_DATA:-../shared/data}
P="--encoder-precision bf16"
test -f indexes/sfwiki-dense32/manifest.json || $S -q index $D/scifact $D/wikipedia --out indexes/sfwiki-dense32 \
    --shards 32 --partitioner kmeans --space dense --backend faiss $P --threads 2
test -f models/sfwiki-mico32/config.json || $S -q train-mico $D/scifact $D/wikipedia --logs train --shards 32 \
    --out models/sfwiki-mico32 $P
test -f indexes/sfwiki-mico32/manifest.json || $S -q index $D/scifact $D/wikipedia --out indexes/sfwiki-mico32 \
    --shards 32 --partitioner mico --mico-model models/sfwiki-mico32 --backend faiss $P --threads 2
SELECTSEARCH_ENCODER_PRECISION=bf16 .venv/bin/python eval/dense/bench_sfwiki.py --dense-index indexes/sfwiki-dense32 --mico-index indexes/sfwiki-mico32 \
    --sources $D/scifact $D/wikipedia --label sfwiki-k32 --out eval/results/dense
