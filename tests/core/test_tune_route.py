"""``tune-route``: hybrid@m weights fitted on held-out logged queries, stored with the index."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from selectsearch.cli import main
from selectsearch.errors import RouteSpecError, SelectSearchError
from selectsearch.index.sharded import ShardedIndex
from selectsearch.route import make_router, parse_route
from selectsearch.route.routing_file import stored_options
from selectsearch.route.tuning import (
    ROUTING_FILE,
    held_out_logs,
    held_out_splits,
    read_routing,
    tune_hybrid,
    write_routing,
)
from selectsearch.types import Query

from .conftest import TOPICS


@pytest.fixture()
def own_index(tiny_index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the tiny index (tuning writes into it) and a private embedding cache."""
    monkeypatch.setenv("SELECTSEARCH_CACHE", str(tmp_path / "cache"))
    return Path(shutil.copytree(tiny_index, tmp_path / "index"))


@pytest.fixture()
def click_log(own_index: Path, tmp_path: Path) -> Path:
    """40 logged queries (10 per topic), each clicking documents of its topic."""
    index = ShardedIndex.open(own_index)
    lines = []
    for topic, words in TOPICS.items():
        docs = sorted(d for d in index.shard_of_doc if d.startswith(topic))
        for i in range(10):
            query = f"{words[i]} {words[(i + 3) % 10]}"
            lines += [f"{query}\t{docs[(i + j) % len(docs)]}\t1" for j in range(3)]
    path = tmp_path / "clicks.tsv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_held_out_split_is_by_query_and_disjoint_from_the_kb(own_index: Path, click_log: Path) -> None:
    held = held_out_logs(ShardedIndex.open(own_index), ".", str(click_log))
    val_texts = {q.text for q in held.queries}
    assert len(val_texts) == 4  # 10% of 40 logged queries
    assert not val_texts & {text for text, _, _ in held.train_records}
    assert len(held.pair_query) == 12 and set(held.pair_query.tolist()) == {0, 1, 2, 3}


def test_random_split_seed_draws_other_validation_queries(own_index: Path, click_log: Path) -> None:
    index = ShardedIndex.open(own_index)
    default = held_out_logs(index, ".", str(click_log))
    texts = [q.text for q in default.queries]
    assert [q.text for q in held_out_logs(index, ".", str(click_log), random_seed=0).queries] == texts
    other = held_out_logs(index, ".", str(click_log), random_seed=1)
    assert other.split["seed"] == 1 and {q.text for q in other.queries} != set(texts)
    assert not {q.text for q in other.queries} & {text for text, _, _ in other.train_records}


def test_random_folds_validate_every_logged_query_once(own_index: Path, click_log: Path) -> None:
    index = ShardedIndex.open(own_index)
    parts = [held_out_logs(index, ".", str(click_log), fold=i, folds=4) for i in range(4)]
    texts = [[q.text for q in p.queries] for p in parts]
    assert sorted(t for ts in texts for t in ts) == sorted({t for t, _, _ in parts[0].records})  # each once
    for part, ts in zip(parts, texts, strict=True):
        assert not set(ts) & {t for t, _, _ in part.train_records} and part.split["folds"] == 4
    stacked = held_out_splits(index, ".", str(click_log), folds=4)["random"]
    assert not isinstance(stacked, str) and len(stacked.folds) == 4 and stacked.train_records == []
    assert [q.text for q in stacked.queries] == [t for ts in texts for t in ts]
    assert len({q.query_id for q in stacked.queries}) == 40 == stacked.split["n_val_queries"]
    assert stacked.pair_query.max() == 39 and len(stacked.pair_query) == sum(len(p.pair_query) for p in parts)


def test_tune_store_and_route(own_index: Path, click_log: Path) -> None:
    index = ShardedIndex.open(own_index)
    tuned = tune_hybrid(index, ".", str(click_log), ["centroid", "cori", "knn"], step=0.25)
    assert tuned["routers"] == ["centroid", "cori", "knn"]
    assert sum(tuned["weights"]) == pytest.approx(1.0) and min(tuned["weights"]) >= 0
    # the fusion is at least as good on validation as any router alone (weight 1 is a grid point)
    assert tuned["val_auc"] >= max(tuned["single_auc"].values()) - 1e-9
    assert tuned["options"]["knn.logs"] == str(click_log)
    assert tuned["options"]["knn.encoder"] == "adapted"  # the default, stored: the weights belong to it
    assert read_routing(own_index) is None
    write_routing(own_index, tuned)
    with pytest.raises(SelectSearchError, match="--overwrite"):
        write_routing(own_index, tuned)
    assert read_routing(own_index) == json.loads(json.dumps(tuned))
    # hybrid@m without routers/weights routes exactly as the stored fusion spelled out
    queries = [Query(t, " ".join(w[4:7])) for t, w in TOPICS.items()]
    stored = make_router(parse_route("hybrid@1"), index, gating="off")  # the gate is tests/core/test_gating.py's
    explicit = make_router(parse_route("hybrid@1"), index, routers="centroid,cori,knn",
                           weights=",".join(str(w) for w in tuned["weights"]),
                           **{"hybrid.knn.logs": str(click_log)})
    np.testing.assert_array_equal(stored.rank(queries), explicit.rank(queries))
    assert stored.weights == tuned["weights"]


def test_cli_tune_route(own_index: Path, click_log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["-q", "tune-route", str(own_index), "--data", ".", "--logs", str(click_log),
            "--routers", "centroid,cori,knn", "--step", "0.5"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "hybrid" in out and "centroid" in out
    assert (own_index / ROUTING_FILE).is_file()
    assert main(args) == 2  # exists: refused, file untouched
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["routers"] == ["centroid", "cori", "knn"]
    assert main(["info", str(own_index)]) == 0
    assert "routing     hybrid@M" in capsys.readouterr().out
    assert main(["-q", "tune-route", str(own_index), "--data", ".", "--logs", str(click_log), "--routers", "all",
                 "--overwrite"]) == 2


def test_tune_route_says_what_it_is_doing(own_index: Path, click_log: Path, caplog: pytest.LogCaptureFixture) -> None:
    """tune-route runs for minutes on a large log (ten draws of each split, calibrations, the gate):
    each stage is a log line on stderr, also when stderr is not a terminal (no bar to show)."""
    with caplog.at_level(logging.INFO, logger="selectsearch.route.tuning"):
        tune_hybrid(ShardedIndex.open(own_index), ".", str(click_log), ["centroid", "cori", "knn"], step=0.5)
    lines = [r.getMessage() for r in caplog.records if r.name == "selectsearch.route.tuning"]
    for stage in ("random split", "topics split", "gate", "calibrat"):
        assert any(stage in line for line in lines), f"no line about the {stage}: {lines}"
    assert all(line.startswith("tune-route: ") for line in lines if "split" in line or "gate" in line)


def test_a_routing_file_without_an_encoder_keeps_the_transformer_it_was_tuned_with(own_index: Path,
                                                                                    click_log: Path) -> None:
    """Files tuned before the encoder was stored were tuned with the transformer, the old default:
    a new default must not silently change what they route with."""
    tuned = tune_hybrid(ShardedIndex.open(own_index), ".", str(click_log), ["cori", "knn"], step=0.5)
    del tuned["options"]["knn.encoder"]
    write_routing(own_index, tuned)
    router = make_router(parse_route("hybrid@1"), ShardedIndex.open(own_index))
    (knn,) = [r for r in router.routers if r.name == "knn"]
    assert not getattr(knn.encoder, "static", False) and knn.encoder.name == "all-MiniLM-L6-v2"
    assert stored_options({"routers": ["cori"], "options": {}}, own_index) == {}  # no knn: nothing added


def test_bad_routing_file(own_index: Path) -> None:
    (own_index / ROUTING_FILE).write_text("{not json")
    with pytest.raises(RouteSpecError, match="tune-route"):
        make_router("hybrid@1", ShardedIndex.open(own_index))


def test_topic_held_out_logs_share_no_query_and_no_topic_with_the_kb(own_index: Path, click_log: Path) -> None:
    held = held_out_logs(ShardedIndex.open(own_index), ".", str(click_log), "topics")
    assert held.validation == "topics" and held.topic_of_query is not None and held.query_topic is not None
    val_texts = {q.text for q in held.queries}
    train_texts = {text for text, _, _ in held.train_records}
    assert val_texts and not val_texts & train_texts
    val_topics = {held.topic_of_query[t] for t in val_texts}
    assert not val_topics & {held.topic_of_query[t] for t in train_texts}
    assert val_topics == set(held.split["held_topics"]) == set(held.query_topic.tolist())
    assert held.split["n_val_queries"] == len(held.queries) and len(held.pair_doc) == len(held.pair_query)
    # the records it indexes are the whole log, split in two
    assert sorted([*held.train_index.tolist(), *held.val_index.tolist()]) == list(range(len(held.records)))
    again = held_out_logs(ShardedIndex.open(own_index), ".", str(click_log), "topics")
    assert [q.text for q in again.queries] == [q.text for q in held.queries]  # seeded
    with pytest.raises(RouteSpecError, match="validation"):
        held_out_logs(ShardedIndex.open(own_index), ".", str(click_log), "sometimes")


@pytest.mark.parametrize("validation", ["topics", "random"])
def test_cli_validation_reports_random_and_topic_auc(own_index: Path, click_log: Path, validation: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    base = ["-q", "tune-route", str(own_index), "--data", ".", "--logs", str(click_log),
            "--routers", "centroid,cori,knn", "--step", "0.5", "--validation", validation]
    assert main(base) == 0
    out = capsys.readouterr().out
    assert "random" in out.splitlines()[2] and "topics" in out.splitlines()[2]  # the AUC columns
    assert f"(chosen on {validation})" in out
    tuned = read_routing(own_index)
    assert tuned is not None and tuned["validation"] == validation
    for kind in ("random", "topics"):
        assert set(tuned["auc"][kind]) == {"centroid", "cori", "knn", "hybrid", "hybrid_gated"}
        assert tuned["splits"][kind]["kind"] == kind and tuned["splits"][kind]["n_val_queries"] > 0
    assert tuned["weights"] == tuned["fits"][validation]["weights"]
    assert tuned["val_auc"] == pytest.approx(tuned["auc"][validation]["hybrid"])
    assert tuned["single_auc"] == {n: tuned["auc"][validation][n] for n in ("centroid", "cori", "knn")}
    # hybrid@m reads the stored fusion as before
    router = make_router(parse_route("hybrid@1"), ShardedIndex.open(own_index))
    assert router.weights == tuned["weights"]
    assert main([*base, "--overwrite", "--topic-fraction", "1.5"]) == 2
    assert "--topic-fraction" in capsys.readouterr().err


def test_topics_falls_back_to_random_when_no_topic_split(own_index: Path, click_log: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import selectsearch.route.shift as shift

    def no_topics(*args: object, **kwargs: object) -> None:
        raise SelectSearchError("a topic split needs at least two non-empty topic clusters")

    monkeypatch.setattr(shift, "topic_split", no_topics)
    tuned = tune_hybrid(ShardedIndex.open(own_index), ".", str(click_log), ["centroid", "cori"], step=0.5)
    assert tuned["validation"] == "random" and "two non-empty" in tuned["validation_fallback"]
    # the same with one draw of each split (the random split then comes from split_by_query)
    tuned = tune_hybrid(ShardedIndex.open(own_index), ".", str(click_log), ["centroid", "cori"], step=0.5, folds=1)
    assert tuned["validation"] == "random" and "two non-empty" in tuned["validation_fallback"]
    assert "topics" not in tuned["auc"] and "error" in tuned["splits"]["topics"]
    from selectsearch.mico import logs

    monkeypatch.setattr(logs, "split_by_query", lambda *a, **k: (np.arange(0), np.arange(0)))  # no random split
    with pytest.raises(RouteSpecError, match="cannot be drawn"):
        tune_hybrid(ShardedIndex.open(own_index), ".", str(click_log), ["centroid", "cori"], step=0.5, folds=1)


def test_topic_held_out_logs_keep_the_validation_documents_out_of_the_kb(own_index: Path, click_log: Path) -> None:
    """A new kind of query also finds documents no logged query led to: the topic split drops every
    training pair whose document a validation query clicked (here: documents clicked from two topics)."""
    index = ShardedIndex.open(own_index)
    docs = {t: sorted(d for d in index.shard_of_doc if d.startswith(t)) for t in TOPICS}
    topics = list(TOPICS)
    shared = [f"{TOPICS[a][i]} {TOPICS[a][(i + 5) % 10]} extra\t{docs[b][i]}\t1"
              for i, (a, b) in enumerate(zip(topics, topics[1:] + topics[:1], strict=True))]
    log = click_log.with_name("cross.tsv")
    log.write_text(click_log.read_text() + "\n".join(shared) + "\n")
    held = held_out_logs(index, ".", str(log), "topics")
    val_docs = set(held.pair_doc)
    assert val_docs and not val_docs & {doc for _, doc, _ in held.train_records}
    before = [r for i, r in enumerate(held.records) if i not in set(held.val_index.tolist())]
    dropped = [r for r in before if r[1] in val_docs]
    assert dropped and held.split["n_train_pairs_dropped_val_docs"] == len(dropped)
    assert held.split["n_train_pairs"] == len(held.train_records) == len(before) - len(dropped)
