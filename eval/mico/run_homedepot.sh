#!/bin/sh
# Home Depot, K=16: MICO (frozen mode) vs. k-means/centroid (lexical and dense) — the commands of
# eval/results/mico/README.md section 1. Logs = train qrels only; evaluation on the test split.
# Run from the repository root. Indexes and models are written OUTSIDE the repository.
set -eu
D=../shared/data/homedepot
I=${INDEXES:-/work/indexes}
M=${MODELS:-/work/models}
R=eval/results/mico
S=.venv/bin/selectsearch

# comparison indexes (the dense one builds the embedding cache that MICO frozen mode reuses)
$S -q index $D --out $I/hd-lkm16 --shards 16 --partitioner kmeans --space lexical --threads 1
$S -q index $D --out $I/hd-dkm16 --shards 16 --partitioner kmeans --space dense --threads 1

# MICO frozen mode (current defaults = head_lr 0.01, beta 2, 20 epochs), then its index
$S train-mico $D --logs train --shards 16 --out $M/hd-mico16 --head-lr 0.01 --beta 2 --epochs 20 --overwrite
$S -q index $D --partitioner mico --mico-model $M/hd-mico16 --out $I/hd-mico16 --shards 16 --threads 1

# coverage/AUC over every budget (no Lucene), then nDCG@10 at budgets 1..4 with selectsearch eval
.venv/bin/python eval/mico/coverage.py $I/hd-mico16 --data $D --split test --route mico \
    --label "MICO frozen (full corpus)" --json $R/hd-coverage.jsonl
.venv/bin/python eval/mico/coverage.py $I/hd-dkm16 --data $D --split test --route centroid \
    --label "dense k-means / centroid (full corpus)" --json $R/hd-coverage.jsonl
for pair in "hd-mico16 mico" "hd-dkm16 centroid" "hd-lkm16 centroid"; do
    set -- $pair
    $S eval $I/$1 --data $D --split test --route all --route $2@1:4 --measures nDCG@10 --k 100 \
        --json $R/$1-$2.json
done
.venv/bin/python eval/mico/table.py "MICO frozen=$R/hd-mico16-mico.json" \
    "dense k-means / centroid=$R/hd-dkm16-centroid.json" "lexical k-means / centroid=$R/hd-lkm16-centroid.json"
