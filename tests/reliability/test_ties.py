"""Tied scores: the metrics we report are the metrics of the ranking we return (issue 17, item 2).

On a corpus of duplicate, equal-length documents every hit ties with others. Three numbers
must agree for every measure, whatever ir-measures provider computes it (pytrec_eval breaks
ties by descending doc id, the msmarco and judged providers by ascending):
in-process ``evaluate()`` == ir-measures over the TREC run written by ``eval --run-dir`` ==
the metrics of the returned order (scored with rank-derived, tie-free scores).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import ir_measures
import pytest

from selectsearch.cli import main
from selectsearch.data import read_run, write_run
from selectsearch.errors import DataFormatError
from selectsearch.ranking import order_by_score, sort_scored, strict_scores

MEASURES = ["nDCG@10", "AP@100", "RR@10", "P@3", "R@5", "Judged@5", "nDCG@3"]
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]


@pytest.fixture(scope="module")
def duplicates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A BEIR folder whose documents come in groups of identical texts, and its 2-shard index."""
    from selectsearch.data import open_corpus
    from selectsearch.index.build import BuildConfig, build_index

    rng = random.Random(7)
    root = tmp_path_factory.mktemp("ties")
    beir = root / "beir"
    (beir / "qrels").mkdir(parents=True)
    docs, queries, qrels = [], {}, []
    for g, word in enumerate(WORDS):
        text = f"{word} {WORDS[(g + 1) % len(WORDS)]} common words here"  # same length everywhere
        ids = [f"d{g}-{c}" for c in "qwertyuiop"]  # ten identical documents per group
        docs += [{"_id": i, "title": "", "text": text} for i in ids]
        queries[f"q{g}"] = word
        for i in rng.sample(ids, 3):  # relevant copies somewhere in the middle of the tie
            qrels.append((f"q{g}", i, rng.choice([1, 2])))
    rng.shuffle(docs)
    (beir / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (beir / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items()))
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n"
                                             + "".join(f"{q}\t{d}\t{r}\n" for q, d, r in qrels))
    index = root / "idx"
    build_index(open_corpus(beir), index, BuildConfig(n_shards=2, partitioner="random", threads=1))
    return beir, index, root


def _returned_order_metrics(run_file: Path, qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """Metrics of the order of the lines (the ranking we returned), with tie-free scores."""
    ranked: dict[str, dict[str, float]] = {}
    for line in run_file.read_text().splitlines():
        qid, _, doc, rank, _, _ = line.split()
        ranked.setdefault(qid, {})[doc] = -float(rank)
    return _calc(ranked, qrels)


def _calc(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    parsed = [ir_measures.parse_measure(m) for m in MEASURES]
    agg = ir_measures.calc_aggregate(parsed, {q: qrels[q] for q in run}, run)
    return {str(m): float(agg[m]) for m in parsed}


def test_metrics_are_those_of_the_returned_ranking(duplicates: tuple[Path, Path, Path]) -> None:
    from selectsearch.data import load_qrels

    beir, index, root = duplicates
    qrels = load_qrels(beir, split="test")
    out = root / "eval"
    assert main(["-q", "eval", str(index), "--data", str(beir), "--split", "test", "--route", "all",
                 "--route", "random@1", "--k", "100", "--measures", *MEASURES, "--run-dir", str(out / "runs"),
                 "--json", str(out / "rows.json")]) == 0
    rows = {r["route"]: r for r in json.loads((out / "rows.json").read_text())}
    for route, name in (("all", "all"), ("random@1", "random-at-1")):
        run_file = out / "runs" / f"{name}.trec"
        in_process = {m: rows[route]["metrics"][m] for m in MEASURES}
        from_file = _calc(read_run(run_file), qrels)
        returned = _returned_order_metrics(run_file, qrels)
        assert in_process == pytest.approx(returned, abs=1e-12), route
        assert from_file == pytest.approx(returned, abs=1e-12), route
        # the ties are real: every query's hits share one score per group of copies
        lines = [line.split() for line in run_file.read_text().splitlines()]
        assert len({(q, round(float(s), 5)) for q, *_, s, _ in lines}) < len(lines) / 5


def test_hits_are_sorted_by_score_then_doc_id(duplicates: tuple[Path, Path, Path]) -> None:
    from selectsearch.search import SelectiveSearcher

    _, index, _ = duplicates
    hits = SelectiveSearcher.open(index, "all").search("alpha", k=100)
    assert hits == sort_scored(hits)
    assert [h.doc_id for h in hits[:10]] == sorted(h.doc_id for h in hits[:10])  # one tie group


@pytest.mark.parametrize("k", [1, 3, 5, 7, 13])
def test_a_tie_at_the_cut_keeps_the_smallest_doc_ids(duplicates: tuple[Path, Path, Path], k: int) -> None:
    """Which tied documents make the top k must not depend on where the build put them: the cut
    is by (score, doc id) like the order, so the top k is the head of any deeper list."""
    from selectsearch.search import SelectiveSearcher

    _, index, _ = duplicates
    searcher = SelectiveSearcher.open(index, "all")
    deep = searcher.search("alpha", k=100)
    assert len(deep) == 20 and len({h.score for h in deep}) == 1  # two groups of ten copies, all tied
    assert searcher.search("alpha", k=k) == deep[:k]
    one = searcher.with_route("random@1")
    deep_one = one.search("alpha", k=100)
    assert one.search("alpha", k=k) == deep_one[:k]


def test_strict_scores_are_strictly_decreasing_in_float32() -> None:
    import numpy as np

    scores = [3.25, 3.25, 3.25, 2.5, 2.5, 1.0]
    out = strict_scores(scores)
    single = np.asarray(out, dtype=np.float32)  # what trec_eval keeps
    assert np.all(np.diff(single) < 0)
    assert out[0] == 3.25 and out[3] == 2.5 and out[5] == 1.0  # the first of each tie is unchanged
    assert max(abs(a - b) / b for a, b in zip(out, scores, strict=True)) < 1e-6
    assert strict_scores([3.0, 2.0]) == [3.0, 2.0]  # no tie: unchanged
    # distinct float64 scores that are one value in float32 are separated too, order kept
    close = [1.0, 1.0 - 1e-12, 1.0 - 2e-12, float(np.nextafter(np.float32(1.0), np.float32(0.0)))]
    assert np.all(np.diff(np.asarray(strict_scores(close), dtype=np.float32)) < 0)
    assert np.all(np.diff(strict_scores(close)) < 0)
    with pytest.raises(ValueError, match="rank order"):
        strict_scores([1.0, 2.0])
    assert order_by_score([1.0, 1.0, 2.0], ["b", "a", "c"]) == [2, 1, 0]


def test_write_run_refuses_an_unsorted_list_and_round_trips_ties(tmp_path: Path) -> None:
    path = tmp_path / "r.trec"
    with pytest.raises(DataFormatError, match="rank order"):
        write_run({"q": [("a", 1.0), ("b", 2.0)]}, path)
    write_run({"q": {"b": 1.0, "a": 1.0, "c": 1.0}}, path)
    lines = [line.split() for line in path.read_text().splitlines()]
    assert [parts[2] for parts in lines] == ["a", "b", "c"]
    # trec_eval-style evaluation (descending doc id on ties) still sees a, b, c
    agg = ir_measures.calc_aggregate([ir_measures.parse_measure("RR")], {"q": {"a": 1}}, read_run(path))
    assert list(agg.values()) == [1.0]
