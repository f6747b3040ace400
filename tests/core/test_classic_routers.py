"""ReDDE, Rank-S, Taily and CORI on a real (tiny) sharded index, and the evaluation sweep."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selectsearch.data import load_qrels, load_queries
from selectsearch.evaluation import evaluate
from selectsearch.route import make_router, parse_route
from selectsearch.search import SelectiveSearcher
from selectsearch.types import Query

from .conftest import TOPICS

ROUTERS = ["random", "centroid", "redde", "ranks", "taily", "cori", "oracle"]


@pytest.fixture(scope="module")
def searcher(tiny_index: Path) -> SelectiveSearcher:
    return SelectiveSearcher.open(tiny_index)


@pytest.mark.parametrize("name", ROUTERS)
def test_router_returns_m_distinct_valid_shards_deterministically(name: str, searcher: SelectiveSearcher,
                                                                  tiny_beir: Path) -> None:
    qrels = load_qrels(tiny_beir, split="test")
    queries = [Query(q, t) for q, t in load_queries(tiny_beir, split="test").items()] + [Query("x", "zzz unknown")]
    router = make_router(parse_route(f"{name}@1"), searcher.index, qrels=qrels)
    k = searcher.index.n_shards
    for m in range(1, k + 1):
        selected = router.select(queries, m)
        assert all(len(s) == m == len(set(s)) and all(0 <= x < k for x in s) for s in selected)
        again = make_router(parse_route(f"{name}@1"), searcher.index, qrels=qrels).select(queries, m)
        assert again == selected


@pytest.mark.parametrize("name", ["redde", "ranks", "taily", "cori", "centroid"])
def test_classic_routers_find_the_topical_shard(name: str, searcher: SelectiveSearcher) -> None:
    index = searcher.index
    router = make_router(parse_route(f"{name}@1"), index)
    hits = 0
    for topic, words in TOPICS.items():
        [best] = router.select([Query(topic, " ".join(words[:4]))], 1)
        shard_docs = index.shard_doc_ids(best[0])
        hits += sum(d.startswith(topic) for d in shard_docs) / max(len(shard_docs), 1) > 0.5
    assert hits >= 3, f"{name} found the topical shard for {hits}/4 topics"


def test_csi_and_term_stats_are_built_inside_the_index(searcher: SelectiveSearcher) -> None:
    make_router(parse_route("redde@1"), searcher.index)
    make_router(parse_route("taily@1"), searcher.index)
    csi = json.loads((searcher.index.path / "csi" / "config.json").read_text())
    assert len(csi["sample_sizes"]) == searcher.index.n_shards
    assert all(0 < s <= n for s, n in zip(csi["sample_sizes"], searcher.index.shard_sizes.tolist(), strict=True))
    assert (searcher.index.path / "termstats" / "df.npz").exists()
    assert not list(searcher.index.path.glob("*.partial"))


def test_rank_s_cutoff_picks_per_query_budgets(searcher: SelectiveSearcher, tiny_beir: Path) -> None:
    queries = load_queries(tiny_beir, split="test")
    qrels = load_qrels(tiny_beir, split="test")
    [row] = evaluate(searcher, queries, qrels, ["ranks"], ["R@100"])
    assert 1 <= row["cost"]["shards_searched"] <= searcher.index.n_shards
    assert row["budget"] is None


def test_sweep_metrics(searcher: SelectiveSearcher, tiny_beir: Path) -> None:
    queries = load_queries(tiny_beir, split="test")
    qrels = load_qrels(tiny_beir, split="test")
    k = searcher.index.n_shards
    rows = evaluate(searcher, queries, qrels, ["all", f"oracle@1:{k}", f"random@1:{k}", f"redde@1:{k}"],
                    ["nDCG@10", "R@100"], k=100)
    by = {r["route"]: r for r in rows}
    assert by["all"]["metrics"]["overlap@10"] == 1.0 and by["all"]["metrics"]["overlap@100"] == 1.0
    assert by["all"]["metrics"]["coverage"] == 1.0
    for name in ("oracle", "random", "redde"):
        assert by[f"{name}@{k}"]["metrics"]["coverage"] == pytest.approx(1.0)  # coverage@K = 1
        assert by[f"{name}@{k}"]["metrics"]["overlap@100"] == pytest.approx(1.0)
        coverages = [by[f"{name}@{m}"]["metrics"]["coverage"] for m in range(1, k + 1)]
        assert coverages == sorted(coverages)
    for m in range(1, k + 1):
        for name in ("random", "redde"):
            assert by[f"oracle@{m}"]["metrics"]["coverage"] >= by[f"{name}@{m}"]["metrics"]["coverage"] - 1e-12
    cost = by["redde@1"]["cost"]
    assert {"router_ms", "search_ms_p50", "total_ms_p95", "largest_shard", "fraction_scored"} <= set(cost)
    assert np.isclose(by["all"]["cost"]["fraction_scored"], 1.0)


def test_bench_and_plot(tiny_beir: Path, tmp_path: Path) -> None:
    from selectsearch.cli import main

    definition = tmp_path / "tiny.toml"
    definition.write_text(
        'name = "tiny"\ncorpus = ["beir"]\nqueries = "beir"\nsplit = "test"\nmeasures = ["nDCG@10", "R@100"]\n'
        'k = 100\n[[index]]\nname = "tiny-k3"\npartitioner = "kmeans"\nshards = 3\n'
        'routes = ["all", "centroid@1:3", "redde@1:3", "oracle@1:3"]\n[index.options]\nsample_size = 500\n')
    out = tmp_path / "results"
    assert main(["-q", "bench", str(definition), "--data", str(tiny_beir.parent), "--indexes",
                 str(tmp_path / "idx"), "--out", str(out), "--threads", "1"]) == 0
    result = json.loads((out / "tiny-k3.json").read_text())
    assert len(result["rows"]) == 10 and result["command"].startswith("selectsearch")
    report = (out / "README.md").read_text()
    assert "95% nDCG@10" in report and "tiny-k3.png" in report
    assert (out / "tiny-k3.png").stat().st_size > 1000
    # a second run reuses the index
    assert main(["-q", "bench", str(definition), "--data", str(tiny_beir.parent), "--indexes",
                 str(tmp_path / "idx"), "--out", str(out)]) == 0
    assert "index reused" in (out / "README.md").read_text()
    assert main(["plot", str(out / "tiny-k3.json"), "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").exists()


def test_cori_scores_are_the_formula_over_the_whole_df_table(searcher: SelectiveSearcher) -> None:
    """CORI's per-(shard, term) beliefs are computed once per index; each query's scores must be the
    module docs' formula applied to the full document-frequency table, exactly."""
    from selectsearch.route.stats import CoriRouter

    router = make_router("cori@2", searcher.index)
    assert isinstance(router, CoriRouter)
    df_all = router.stats.df.toarray()  # (K, V)
    k = df_all.shape[0]
    texts = [" ".join(words[:3]) for words in TOPICS.values()] + ["rocket rocket orbit bank", "zzzunknown", ""]
    checked = 0
    for text in texts:
        ids = router.stats.term_ids(router.analyzer(text))
        if not len(ids):
            continue
        df = df_all[:, ids]
        t = df / (df + 50.0 + 150.0 * router._cw_ratio[:, None])
        idf = np.log((k + 0.5) / np.maximum((df > 0).sum(axis=0), 1)) / np.log(k + 1.0)
        beliefs = router.belief + (1.0 - router.belief) * t * idf[None, :]
        expected = np.cumsum(beliefs, axis=1)[:, -1] / len(ids)  # the terms summed in query order
        assert np.array_equal(router.query_scores(ids), expected)
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize("name", ["cori", "taily"])
def test_a_batch_routes_each_query_exactly_as_alone(name: str, searcher: SelectiveSearcher) -> None:
    """A batch is scored at once (CORI gathers every query's terms in one call); each query's
    scores must be bit-identical to routing it alone, so a query's shards never depend on the
    batch it came in (repeated terms, unknown terms and empty queries included)."""
    router = make_router(f"{name}@2", searcher.index)
    words = [w for ws in TOPICS.values() for w in ws] + ["zzzunknown", "the"]
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words, size=int(rng.integers(0, 9)))) for _ in range(60)]
    queries = [Query(f"q{i}", t) for i, t in enumerate(texts)]
    alone = np.vstack([router.scores([q]) for q in queries])
    assert np.array_equal(router.scores(queries), alone)
    assert np.array_equal(router.scores(queries[::-1]), alone[::-1])


def test_cori_in_java_routes_exactly_as_in_python(searcher: SelectiveSearcher) -> None:
    """CORI scores a batch in the JVM when the Java helpers are compiled; its scores must be the
    Python path's to the bit (analysis, unknown and repeated terms, empty queries, the prior),
    so a query goes to the same shards whichever path runs."""
    from selectsearch.route.stats import CoriRouter

    router = make_router("cori@2", searcher.index)
    assert isinstance(router, CoriRouter)
    if router._java is None:
        pytest.skip("no javac on this machine: the Java CORI scorer is optional")
    python = CoriRouter(router.stats, java=False)
    words = [w for ws in TOPICS.values() for w in ws] + ["zzzunknown", "the", "Rockets!", "ORBIT's", "naïve"]
    rng = np.random.default_rng(1)
    texts = [" ".join(rng.choice(words, size=int(rng.integers(0, 12)))) for _ in range(200)] + ["", "   "]
    queries = [Query(f"q{i}", t) for i, t in enumerate(texts)]
    assert np.array_equal(router.scores(queries), python.scores(queries))
    assert np.array_equal(np.vstack([router.scores([q]) for q in queries]), python.scores(queries))
    assert np.array_equal(router.rank(queries), python.rank(queries))


@pytest.mark.parametrize("k", [10, 1000])
def test_one_query_routed_in_the_engine_gets_what_routing_in_python_gets(searcher: SelectiveSearcher,
                                                                         k: int) -> None:
    """One query at a time, cori@M routes inside the Lucene engine (one call into Java); a batch
    routes in Python. Shards, hits (scores, ties), documents scored and router scores must agree."""
    words = [w for ws in TOPICS.values() for w in ws] + ["zzzunknown", "the"]
    rng = np.random.default_rng(2)
    queries = [Query(f"q{i}", " ".join(rng.choice(words, size=int(rng.integers(0, 8))))) for i in range(40)]
    for budget in (1, 2, 3, 4):
        routed = searcher.with_route(f"cori@{budget}")
        if not routed.routes_in_engine:
            pytest.skip("no javac on this machine: the Java engine and CORI scorer are optional")
        batch = routed.batch_search(queries, k=k, explain=True)
        for q in queries:
            alone = routed.batch_search([q], k=k, explain=True)[q.query_id]
            other = batch[q.query_id]
            assert alone.trace.extra["routed_in_engine"] is True and "routed_in_engine" not in other.trace.extra
            assert [tuple(h) for h in alone.hits] == [tuple(h) for h in other.hits]
            assert alone.trace.shards == other.trace.shards and alone.trace.docs_scored == other.trace.docs_scored
            for key in ("router_scores", "shard_scores"):
                assert alone.trace.extra[key] == other.trace.extra[key]


def test_a_shard_chosen_without_a_lucene_index_is_skipped_by_the_engine(searcher: SelectiveSearcher) -> None:
    """The engine routes over every shard but searches only those with a Lucene index (an empty
    shard has none): routed to shards {a, b} with a marked empty, the hits are those of b alone."""
    router = make_router("cori@2", searcher.index)
    lucene = searcher.engines.lucene
    if getattr(router, "engine_scorer", None) is None or not lucene.batched:
        pytest.skip("no javac on this machine: the Java engine and CORI scorer are optional")
    text = " ".join(next(iter(TOPICS.values()))[:3])
    n = searcher.index.n_shards
    _, _, chosen, _ = lucene.search_routed(text, router.engine_scorer, 2, list(range(n)), 50)
    engine_shard = [-1 if s == chosen[0] else s for s in range(n)]
    docids, scores, again, _ = lucene.search_routed(text, router.engine_scorer, 2, engine_shard, 50)
    assert again == chosen
    alone = lucene.search_batch([text], 50, [[chosen[1]]])
    assert docids.tolist() == alone.docids.tolist() and scores.tolist() == alone.scores.tolist()


@settings(max_examples=200, deadline=None)
@given(st.floats(1e-3, 1e4), st.floats(1e-3, 1e3), st.floats(0.0, 1e4), st.floats(1e-9, 1 - 1e-9))
def test_taily_gamma_tails_are_scipy_stats_bit_for_bit(shape: float, scale: float, x: float, q: float) -> None:
    """Taily calls the Gamma tail functions by their special functions (scipy.stats' argument
    handling cost about as much as the rest of a query): the same bits as scipy.stats, x = 0 included."""
    from scipy import stats as scipy_stats

    from selectsearch.route.stats import gamma_isf, gamma_sf

    assert gamma_isf(q, shape, scale) == float(scipy_stats.gamma.isf(q, a=shape, scale=scale))
    for dtype in (np.float64, np.float32):  # Taily's moments are float32 term statistics
        shapes, scales = np.array([shape, shape * 2], dtype=dtype), np.array([scale, scale / 3], dtype=dtype)
        for point in (x, 0.0):
            assert np.array_equal(gamma_sf(point, shapes, scales),
                                  scipy_stats.gamma.sf(point, a=shapes, scale=scales))
