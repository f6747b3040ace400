#!/bin/sh
# Fit hybrid@m weights with knn fused on Home Depot's dense k-means shards (fairness) and on SciFact's
# MICO and dense k-means shards, then score nDCG@10 with the weights each fit chose (section 10 of
# eval/results/mico/README.md). Needs the indexes under /work/indexes (commands in sections 1 and 4).
cd "$(dirname "$0")/../.."
P=.venv/bin/python; R=eval/results/mico
run() {  # index data routers out
  $P eval/mico/hybrid.py $1 --data $2 --logs train --routers $3 --step 0.1 --out $R/$4 || return
  cmd=$($P -c "import json;print(json.load(open('$R/$4.json'))['eval_command'])")
  .venv/bin/$(echo $cmd | sed "s/^selectsearch eval/selectsearch -q eval/") --measures nDCG@10 R@100 --k 100 --json $R/$4-eval.json
}
run /work/indexes/hd-dkm16 ../shared/data/homedepot centroid,cori,taily,knn hd-dkm16-hybrid4-knn
run /work/indexes/sf-mico16-e60 ../shared/data/scifact mico,cori,taily,knn sf-mico16-e60-hybrid4-knn
run /work/indexes/sf-dkm16 ../shared/data/scifact centroid,cori,taily,knn sf-dkm16-hybrid4-knn
echo done
