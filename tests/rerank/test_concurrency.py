"""One searcher, router or reranker shared by 8 threads answers exactly as when called sequentially.

Issue 17, item 1: four threads on one ``cori@2`` searcher returned hits from unselected shards,
other queries' hits and out-of-range docids (pyjnius binds a Java method to its receiver through
shared state). Every router, every retriever and both rerankers are checked here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from selectsearch.data import load_qrels, load_queries
from selectsearch.rerank import load_reranker
from selectsearch.route import make_router, parse_route
from selectsearch.search import SelectiveSearcher
from selectsearch.types import Query

THREADS = 8
ROUNDS = 2


@pytest.fixture(scope="module")
def kmeans_index(beir: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The planted collection in 4 k-means shards with Lucene and FAISS (tiny encoder)."""
    from selectsearch.data import open_corpus
    from selectsearch.dense.config import DenseConfig
    from selectsearch.index.build import BuildConfig, build_index

    out = tmp_path_factory.mktemp("threads") / "planted-k4"
    config = BuildConfig(n_shards=4, partitioner="kmeans", threads=1, backends=("lucene", "faiss"),
                         dense=DenseConfig(model=str(tiny_model_dir), max_length=32,
                                           cache_dir=str(tmp_path_factory.mktemp("emb"))))
    build_index(open_corpus(beir), out, config)
    return out


@pytest.fixture(scope="module")
def queries(beir: Path) -> list[Query]:
    out = {**load_queries(beir, split="test"), **load_queries(beir, split="train")}
    return [Query(qid, text) for qid, text in out.items()]


def _router_options(route: str, mico_dir: Path, router_dir: SimpleNamespace, beir: Path,
                    tiny_model_dir: Path) -> dict[str, Any]:
    """The options of ``route``'s router (options for routers a run does not use are refused)."""
    knn = {"logs": "train", "data": str(beir), "encoder": str(tiny_model_dir), "k": "10"}
    every = {"mico.mico_model": str(mico_dir), "distilled.model": str(router_dir.out),
             **{f"knn.{k}": v for k, v in knn.items()},
             "hybrid.routers": "mico,cori,knn", "hybrid.weights": "0.3,0.4,0.3",
             "hybrid.mico.mico_model": str(mico_dir), **{f"hybrid.knn.{k}": v for k, v in knn.items()}}
    name = parse_route(route).name
    return {key: value for key, value in every.items() if key.split(".")[0] == name}


def _in_threads(work: Callable[[int], None]) -> list[str]:
    """Run ``work(i)`` for i in 0..THREADS-1 concurrently; the errors it raised."""
    errors: list[str] = []
    start = threading.Barrier(THREADS)

    def run(i: int) -> None:
        try:
            start.wait()
            work(i)
        except Exception as exc:  # reported by the test
            errors.append(repr(exc))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def _answers(searcher: SelectiveSearcher, qs: list[Query], k: int) -> dict[str, tuple[Any, ...]]:
    out = searcher.batch_search(qs, k=k)
    return {qid: (tuple(r.trace.shards), tuple(r.hits)) for qid, r in out.items()}


def _check_concurrent(searcher: SelectiveSearcher, qs: list[Query], k: int = 20) -> None:
    sequential = _answers(searcher, qs, k)
    got: dict[tuple[int, str], tuple[Any, ...]] = {}

    def work(i: int) -> None:
        for r in range(ROUNDS):
            for q in qs[i::THREADS]:  # one query per call: the most interleaving
                got[(r, q.query_id)] = _answers(searcher, [q], k)[q.query_id]

    errors = _in_threads(work)
    assert not errors, errors
    wrong = sorted({qid for (_, qid), answer in got.items() if answer != sequential[qid]})
    assert not wrong, f"{searcher.route_name}: {len(wrong)} queries differ from sequential search: {wrong[:5]}"
    assert len(got) == ROUNDS * len(qs)


ROUTES = ["all", "random@2", "centroid@2", "oracle@2", "redde@2", "ranks", "taily@2", "taily", "cori@2",
          "mico@2", "distilled@2", "knn@2", "hybrid@2"]


@pytest.mark.parametrize("route", ROUTES)
def test_every_router_is_thread_safe(route: str, kmeans_index: Path, queries: list[Query], beir: Path,
                                     mico_dir: Path, router_dir: SimpleNamespace, tiny_model_dir: Path) -> None:
    qrels = {**load_qrels(beir, split="test"), **load_qrels(beir, split="train")}
    searcher = SelectiveSearcher.open(kmeans_index, route, qrels=qrels,
                                      router_options=_router_options(route, mico_dir, router_dir, beir, tiny_model_dir))
    _check_concurrent(searcher, queries)


@pytest.mark.parametrize("retriever", ["bm25", "dense", "hybrid"])
def test_every_retriever_is_thread_safe(retriever: str, kmeans_index: Path, queries: list[Query]) -> None:
    searcher = SelectiveSearcher.open(kmeans_index, "cori@2", retriever=retriever)
    _check_concurrent(searcher, queries)


@pytest.mark.parametrize("which", ["teacher", "student"])
def test_every_reranker_is_thread_safe(which: str, models: SimpleNamespace, kmeans_index: Path,
                                       queries: list[Query]) -> None:
    folder = models.teacher_dir if which == "teacher" else models.student_dir
    searcher = SelectiveSearcher.open(kmeans_index, "cori@2", reranker=load_reranker(folder), rerank_depth=10)
    _check_concurrent(searcher, queries[:24], k=10)


def test_a_router_shared_between_searchers_and_threads(kmeans_index: Path, queries: list[Query], mico_dir: Path,
                                                        router_dir: SimpleNamespace, beir: Path,
                                                        tiny_model_dir: Path) -> None:
    """Routers themselves, called directly from many threads, rank as sequentially."""
    from selectsearch.index.sharded import ShardedIndex

    index = ShardedIndex.open(kmeans_index)
    for route in ("redde@2", "ranks", "cori@2", "hybrid@2"):
        options = _router_options(route, mico_dir, router_dir, beir, tiny_model_dir)
        router = make_router(parse_route(route), index, **options)
        budget = parse_route(route).budget
        sequential = {q.query_id: router.select([q], budget)[0] for q in queries}
        got: dict[str, list[int]] = {}

        def work(i: int, router: Any = router, budget: int | None = budget, got: dict[str, list[int]] = got) -> None:
            for q in queries[i::THREADS]:
                got[q.query_id] = router.select([q], budget)[0]

        assert not _in_threads(work)
        assert got == sequential, route
