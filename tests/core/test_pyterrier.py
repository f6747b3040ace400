"""``selectsearch.pyterrier``: a selective searcher as a PyTerrier transformer, in ``pt.Experiment``.

PyTerrier's core runs without Java (its own); selectsearch's JVM does the searching.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import ir_measures
import pandas as pd
import pytest

from selectsearch.cli import main
from selectsearch.index.sharded import ShardedIndex
from selectsearch.search import SelectiveSearcher

from .conftest import TOPICS

pt = pytest.importorskip("pyterrier")

from selectsearch.pyterrier import (  # noqa: E402  (after the skip: the module needs pyterrier)
    OUTPUT_COLUMNS,
    SelectiveRetriever,
    load_qrels,
    load_topics,
)

MEASURES = ["nDCG@10", "R@50", "AP", "RR@10"]


@pytest.fixture(scope="module")
def judged(tiny_index: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """24 two-word queries with noisy judgements (half of a topic relevant, some others too), so
    routes differ in every measure: ``(queries.tsv, qrels)``."""
    rng = random.Random(7)
    docs = sorted(ShardedIndex.open(tiny_index).shard_of_doc)
    folder = tmp_path_factory.mktemp("judged")
    queries, qrels = [], []
    for topic, words in TOPICS.items():
        own = [d for d in docs if d.startswith(topic)]
        others = [d for d in docs if not d.startswith(topic)]
        for i in range(6):
            qid = f"{topic}-{i}"
            other_topic = rng.choice([t for t in TOPICS if t != topic])
            extra = f" {rng.choice(TOPICS[other_topic])}" if i % 2 else ""
            queries.append(f"{qid}\t{rng.choice(words)} {rng.choice(words)}{extra}")
            for d in rng.sample(own, 12):
                qrels.append(f"{qid} 0 {d} {rng.choice([1, 2])}")
            for d in rng.sample(others, 4):
                qrels.append(f"{qid} 0 {d} {rng.choice([0, 1])}")
    (folder / "queries.tsv").write_text("\n".join(queries) + "\n")
    (folder / "qrels.txt").write_text("\n".join(qrels) + "\n")
    return folder / "queries.tsv", folder / "qrels.txt"


@pytest.fixture(scope="module")
def exhaustive(tiny_index: Path) -> SelectiveRetriever:
    return SelectiveRetriever(tiny_index, route="all", k=100)


def test_transform_returns_the_searchers_ranking_with_shard_columns(tiny_index: Path,
                                                                    exhaustive: SelectiveRetriever) -> None:
    cori = exhaustive.with_route("cori@2")
    topics = pd.DataFrame({"qid": ["a", "b"], "query": ["rocket orbit", "flour sugar bake"],
                           "query_0": ["orig a", "orig b"]})
    out = cori.transform(topics)
    assert list(out.columns) == [*OUTPUT_COLUMNS, "query_0"]  # the queries' other columns are kept
    expected = SelectiveSearcher.open(tiny_index, route="cori@2").batch_search(
        {"a": "rocket orbit", "b": "flour sugar bake"}, k=100)
    for qid, result in expected.items():
        rows = out[out["qid"] == qid]
        assert rows["docno"].tolist() == [h.doc_id for h in result.hits]
        assert rows["shard_id"].tolist() == [h.shard_id for h in result.hits]
        assert rows["rank"].tolist() == list(range(len(result.hits)))  # PyTerrier ranks from 0
        scores = rows["score"].to_numpy()
        assert (scores[1:] < scores[:-1]).all()  # strictly decreasing: every evaluator sees this order
        assert scores == pytest.approx([h.score for h in result.hits], rel=1e-6)
        assert set(rows["shards"]) == {tuple(result.trace.shards)} and len(result.trace.shards) == 2
        assert set(rows["docs_scored"]) == {result.trace.docs_scored}
        assert set(rows["query_0"]) == {f"orig {qid}"}
    assert set(out["shard_id"]) <= {s for t in out["shards"] for s in t}


def test_empty_frame_and_bad_input(exhaustive: SelectiveRetriever) -> None:
    empty = exhaustive.transform(pd.DataFrame({"qid": pd.Series(dtype=object), "query": pd.Series(dtype=object)}))
    assert len(empty) == 0 and list(empty.columns) == list(OUTPUT_COLUMNS)
    with pytest.raises(ValueError, match="appears more than once"):
        exhaustive.transform(pd.DataFrame({"qid": ["1", "1"], "query": ["rocket", "oven"]}))
    with pytest.raises(Exception, match="query"):
        exhaustive.transform(pd.DataFrame({"qid": ["1"]}))
    with pytest.raises(ValueError, match="k"):
        SelectiveRetriever(exhaustive.searcher, k=0)


def test_operators_compose(exhaustive: SelectiveRetriever) -> None:
    top5 = (exhaustive % 5).compile()  # the cut-off fuses into the retriever: it searches 5 hits
    assert isinstance(top5, SelectiveRetriever) and top5.k == 5 and top5.route == "all"
    full = exhaustive.search("rocket orbit")
    assert top5.search("rocket orbit")["docno"].tolist() == full["docno"].tolist()[:5]
    # `>>` with any PyTerrier transformer: here one that keeps shard 0's hits
    pipeline = exhaustive >> pt.apply.generic(lambda df: df[df["shard_id"] == 0])
    assert pipeline.search("rocket orbit")["docno"].tolist() == full[full["shard_id"] == 0]["docno"].tolist()
    assert (exhaustive % 1000).compile() is exhaustive  # a looser cut-off changes nothing


def test_experiment_gives_the_metrics_of_selectsearch_eval(tiny_index: Path, judged: tuple[Path, Path],
                                                           exhaustive: SelectiveRetriever, tmp_path: Path) -> None:
    queries, qrels = judged
    routes = ["all", "cori@2", "centroid@1", "random@1"]
    assert main(["-q", "eval", str(tiny_index), "--queries", str(queries), "--qrels", str(qrels), "--k", "100",
                 "--measures", *MEASURES, *[a for r in routes for a in ("--route", r)],
                 "--json", str(tmp_path / "eval.json")]) == 0
    cli = {row["route"]: row["metrics"] for row in json.loads((tmp_path / "eval.json").read_text())}
    systems = [exhaustive] + [exhaustive.with_route(r) for r in routes[1:]]
    table = pt.Experiment(systems, load_topics(queries), load_qrels(qrels),
                          [ir_measures.parse_measure(m) for m in MEASURES], names=routes, baseline=0, correction="holm")
    for _, row in table.iterrows():
        for m in MEASURES:
            assert row[m] == pytest.approx(cli[row["name"]][m], abs=1e-12), (row["name"], m)
    # the routes really differ (the comparison is not between equal numbers), and significance is there
    assert len({round(cli[r]["nDCG@10"], 6) for r in routes}) >= 3
    assert {f"{m} p-value corrected" for m in MEASURES} <= set(table.columns)
    assert table.loc[table["name"] == "random@1", "nDCG@10 reject"].item()


def test_route_parameters(tiny_index: Path, exhaustive: SelectiveRetriever) -> None:
    assert repr(exhaustive.with_route("cori@2", k=7)) == "SelectiveRetriever('cori@2', k=7)"
    with pytest.raises(Exception, match="sweep"):
        exhaustive.with_route("cori@1:3")
    with pytest.raises(Exception, match="unknown options"):
        exhaustive.with_route("cori@2", router_options={"nope": 1})
    # oracle@M takes judgements, and a router object works as in SelectiveSearcher.open
    oracle = exhaustive.with_route("oracle@1", qrels={"q": {"space-1": 1}})
    out = oracle.transform(pd.DataFrame({"qid": ["q"], "query": ["rocket"]}))
    assert set(out["shards"].iloc[0]) == {ShardedIndex.open(tiny_index).shard_of_doc["space-1"]}


def test_topics_and_qrels_frames(judged: tuple[Path, Path]) -> None:
    queries, qrels = judged
    topics = load_topics(queries)
    assert list(topics.columns) == ["qid", "query"] and len(topics) == 24 and topics["qid"].iloc[0] == "space-0"
    frame = load_qrels(qrels)
    assert list(frame.columns) == ["qid", "docno", "label"] and len(frame) == 24 * 16


def test_import_is_lazy_and_missing_pyterrier_is_one_clear_error() -> None:
    code = ("import sys, selectsearch, selectsearch.pyserini_compat\n"
            "print('pyterrier' in sys.modules)\n"
            "sys.modules['pyterrier'] = None  # as if not installed\n"
            "try:\n"
            "    import selectsearch.pyterrier\n"
            "except Exception as exc:\n"
            "    print(type(exc).__name__, exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert lines[0] == "False"
    assert lines[1].startswith("DependencyError") and "pip install 'selectsearch[pyterrier]'" in lines[1]
