# Two commands for a newcomer (see README):
#   make demo   — set up, index SciFact (or DATA=...) into 16 k-means shards, tune the router on its
#                 logs (when it has train qrels), query, print the evaluation table
#   make test   — set up, lint, type-check and run the tests
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= ../shared/data/scifact
SPLIT ?= test
QUERY ?= vitamin D deficiency and fractures
SHARDS ?= 16
NAME ?= $(notdir $(abspath $(DATA)))
INDEX ?= indexes/$(basename $(basename $(NAME)))-k$(SHARDS)
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint clean-venv

setup: $(STAMP)

# torch is installed first and pinned: an unpinned torch pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	@if [ -f $(INDEX)/manifest.json ]; then echo "reusing $(INDEX) (delete it to rebuild)"; \
	else $(VENV)/bin/selectsearch index $(DATA) --out $(INDEX) --shards $(SHARDS) --partitioner kmeans; fi
	$(VENV)/bin/selectsearch info $(INDEX)
	@# with search logs (train qrels) in the folder: knn@2 learns from them, and tune-route fits the
	@# fused router hybrid@2 (centroid + CORI + knn) on held-out logged queries, stored with the index
	@if [ -f $(DATA)/qrels/train.tsv ] && [ "$(SPLIT)" != train ]; then \
		if [ -f $(INDEX)/routing.json ]; then echo "reusing $(INDEX)/routing.json (delete it to re-tune)"; \
		else $(VENV)/bin/selectsearch tune-route $(INDEX) --data $(DATA) --logs train --routers centroid,cori,knn; fi; fi
	@# --route auto: the tuned fused router with a per-query budget (cori@auto on an untuned index)
	$(VENV)/bin/selectsearch search $(INDEX) --query "$(QUERY)" --route auto --k 5
	@if [ -f $(DATA)/qrels/$(SPLIT).tsv ]; then \
		LOGS=""; if [ -f $(DATA)/qrels/train.tsv ] && [ "$(SPLIT)" != train ]; then LOGS="--route knn@2 --route hybrid@2 --route hybrid@auto"; fi; \
		$(VENV)/bin/selectsearch eval $(INDEX) --data $(DATA) --split $(SPLIT) \
			--route all --route auto --route random@2 --route centroid@1 --route centroid@2 --route centroid@4 --route cori@2 \
			$$LOGS --route oracle@1 \
			--measures nDCG@10 R@100 R@1000; \
	else echo "no judgements at $(DATA)/qrels/$(SPLIT).tsv: evaluation skipped (pass a BEIR folder to evaluate)"; fi

lint: $(STAMP)
	$(VENV)/bin/ruff check selectsearch tests eval tools
	$(VENV)/bin/mypy

# The Ray cluster tests (tests/serve/test_ray.py, test_ray_serve.py, tests/bench/test_ray_entry_points.py, tests/build/test_ray_build.py, test_ray_embed.py;
# skipped in the first run) need a network namespace
# with nothing but loopback: Ray sends its traffic to the machine's non-loopback address otherwise.
# CI runs as root. The search page's browser tests need Debian's chromium: the first run
# (tests/serve/test_page.py) installs it when missing; the namespace, offline, reuses it.
test: lint
	$(PY) -m pytest tests
	@if unshare -n true 2>/dev/null; then \
		unshare -n sh -c 'ip link set lo up && exec $(PY) -m pytest tests/serve/test_ray.py tests/serve/test_ray_serve.py tests/bench/test_ray_entry_points.py tests/build/test_ray_build.py tests/build/test_ray_embed.py'; \
	else echo "Ray cluster tests skipped: they need root for 'unshare -n' (a loopback-only network namespace)"; fi

clean-venv:
	rm -rf $(VENV)
