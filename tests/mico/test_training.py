"""Training on a planted-topic collection, save/load round trip, partitioner, router, CLI."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("torch")

from selectsearch.cli import main
from selectsearch.data import open_corpus
from selectsearch.errors import ModelError
from selectsearch.index.manifest import Manifest
from selectsearch.mico.config import MicoConfig
from selectsearch.mico.run import train_from_data
from selectsearch.partition.base import CorpusScan, load_partition
from selectsearch.route.base import parse_route
from selectsearch.train.callbacks import TrainerCallback, TrainState
from selectsearch.types import Query

K = 4


def _config(model: Path, **kw: object) -> MicoConfig:
    base = {"n_clusters": K, "encoder": str(model), "max_length": 32, "epochs": 15, "batch_size": 16,
            "head_lr": 0.01, "warmup_steps": 5, "val_fraction": 0.2, "patience": 0, "seed": 0}
    base.update(kw)
    return MicoConfig(**base)  # type: ignore[arg-type]


def _coverage_at_1(model_dir: Path, beir: Path) -> float:
    """Test-split coverage@1 of the saved model: routed cluster == assigned cluster of the relevant doc."""
    from selectsearch.data import load_qrels, load_queries
    from selectsearch.mico.model import MicoModelFolder

    folder = MicoModelFolder(model_dir)
    docs = list(open_corpus(beir))
    shard = dict(zip([d.doc_id for d in docs],
                     np.argmax(folder.document_assigner().scores([d.contents for d in docs]), 1).tolist(),
                     strict=True))
    queries = load_queries(beir, split="test")
    qrels = load_qrels(beir, split="test")
    routed = np.argmax(folder.query_router().scores(list(queries.values())), 1)
    hits = [routed[i] == shard[d] for i, qid in enumerate(queries) for d in qrels[qid]]
    return float(np.mean(hits))


class Recorder(TrainerCallback):
    def __init__(self) -> None:
        self.steps = 0
        self.evals: list[float] = []
        self.ended = False

    def on_step_end(self, state: TrainState, metrics: dict[str, float]) -> None:
        self.steps += 1
        assert np.isfinite(metrics["loss"])

    def on_evaluate(self, state: TrainState, metrics: dict[str, float]) -> None:
        self.evals.append(metrics["val_auc"])

    def on_train_end(self, state: TrainState) -> None:
        self.ended = True


@pytest.fixture(scope="module")
def trained(beir: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    out = tmp_path_factory.mktemp("models") / "planted"
    recorder = Recorder()
    result = train_from_data([beir], "train", _config(tiny_model_dir), out=out, callbacks=[recorder],
                             checkpoint=out.with_name("planted.ckpt"))
    return SimpleNamespace(out=out, result=result, recorder=recorder)


def test_training_recovers_planted_topics(trained: SimpleNamespace, beir: Path) -> None:
    coverage = _coverage_at_1(trained.out, beir)
    assert coverage > 0.6, coverage  # chance is 1/K = 0.25
    assert trained.result.best_auc >= trained.result.initial_auc
    assert trained.recorder.ended and trained.recorder.steps == trained.result.state.step
    log = json.loads((trained.out / "training_log.json").read_text())
    assert log["state"]["history"][0]["step"] == 0 and "val_auc" in log["state"]["history"][-1]


def test_save_load_round_trip_gives_identical_routing(trained: SimpleNamespace, beir: Path, tmp_path: Path) -> None:
    import torch

    from selectsearch.mico.model import MicoModelFolder
    from selectsearch.route.mico import MicoRouter

    queries = [Query(f"q{i}", t) for i, t in enumerate(["rocket orbit", "flour sugar", "stock bond", "gene dna"])]
    folder = MicoModelFolder(trained.out)
    encoder = folder.text_encoder()
    with torch.inference_mode():
        expected = trained.result.query_head(torch.as_tensor(encoder.encode([q.text for q in queries]))).numpy()
    router = MicoRouter(trained.out)
    np.testing.assert_allclose(router.scores(queries), expected, rtol=1e-5, atol=1e-5)
    first = router.rank(queries)
    assert np.array_equal(MicoRouter(trained.out).rank(queries), first)
    assert sorted(first[0].tolist()) == list(range(K))


def test_partitioner_assigns_every_document_and_router_reads_the_index(trained: SimpleNamespace, beir: Path,
                                                                       tmp_path: Path) -> None:
    from selectsearch.data import corpus_fingerprint
    from selectsearch.partition.mico import MicoPartitioner
    from selectsearch.route.mico import make_mico_router

    corpus = open_corpus(beir)
    docs = list(corpus)
    scan = CorpusScan(n_docs=len(docs), fingerprint=corpus_fingerprint(d.doc_id for d in docs), sample=[],
                      sample_positions=[], corpus=corpus)
    fitted = MicoPartitioner(model=str(trained.out)).fit(scan, n_shards=K)
    assert fitted._embeddings is not None  # frozen mode reuses the embedding cache
    batched = np.concatenate([fitted.assign(docs[i:i + 7], np.arange(i, min(i + 7, len(docs))))
                              for i in range(0, len(docs), 7)])
    assert batched.shape == (len(docs),) and batched.min() >= 0 and batched.max() < K
    part_dir = tmp_path / "index" / "partition"
    part_dir.mkdir(parents=True)
    config = fitted.save(part_dir)
    assert config["kind"] == "mico"
    reloaded = load_partition(part_dir)
    assert np.array_equal(reloaded.assign(docs, np.arange(len(docs))), batched)  # encoder path == cache path
    index = SimpleNamespace(path=tmp_path / "index", n_shards=K, manifest=Manifest.from_json({"partition": config}))
    router = make_mico_router(parse_route("mico@1"), index, qrels=None, seed=0)  # type: ignore[arg-type]
    queries = [Query("a", "planet galaxy")]
    other = SimpleNamespace(path=tmp_path, n_shards=K, manifest=Manifest.from_json({"partition": {"kind": "kmeans"}}))
    explicit = make_mico_router(parse_route("mico@1"), other, qrels=None, seed=0,  # type: ignore[arg-type]
                                mico_model=trained.out)
    assert np.array_equal(router.rank(queries), explicit.rank(queries))
    with pytest.raises(ModelError, match="--shards"):
        MicoPartitioner(model=str(trained.out)).fit(scan, n_shards=K + 1)


def test_router_errors_name_the_fix(trained: SimpleNamespace, tmp_path: Path) -> None:
    from selectsearch.errors import RouteSpecError
    from selectsearch.route.mico import make_mico_router

    kmeans_dense = Manifest.from_json({"partition": {"kind": "kmeans-dense"}})
    plain = SimpleNamespace(path=tmp_path, n_shards=K, manifest=kmeans_dense)
    with pytest.raises(RouteSpecError, match="--partitioner mico"):
        make_mico_router(parse_route("mico@1"), plain, qrels=None, seed=0)  # type: ignore[arg-type]
    wrong_k = SimpleNamespace(path=tmp_path, n_shards=K + 4, manifest=kmeans_dense)
    with pytest.raises(RouteSpecError, match="clusters"):
        make_mico_router(parse_route("mico@1"), wrong_k, qrels=None, seed=0,  # type: ignore[arg-type]
                         mico_model=trained.out)


def test_resume_continues_from_the_checkpoint(beir: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    config = _config(tiny_model_dir, epochs=2, eval_every=0)
    ckpt = tmp_path / "ckpt"
    first = train_from_data([beir], "train", config, out=None, checkpoint=ckpt)
    again = train_from_data([beir], "train", config, out=None, checkpoint=ckpt, resume=True)
    assert again.state.step == first.state.step  # already finished: nothing left to do
    longer = _config(tiny_model_dir, epochs=2, eval_every=0)
    state = json.loads((ckpt / "state.json").read_text())
    assert state["step"] == first.state.step and state["epoch"] == 2
    assert longer == config


def test_full_mode_runs_a_bounded_number_of_steps(beir: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    result = train_from_data([beir], "train", _config(tiny_model_dir, mode="full", max_steps=6, eval_every=3,
                                                      size_sample=64), out=tmp_path / "full")
    assert result.state.step == 6
    saved = json.loads((tmp_path / "full" / "config.json").read_text())
    assert saved["encoder"] == "encoder" and not saved["encoder_frozen"]
    assert (tmp_path / "full" / "encoder" / "config.json").exists()


def test_cli_trains_and_rejects_unknown_logged_documents(beir: Path, tiny_model_dir: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    logs = tmp_path / "clicks.tsv"
    logs.write_text("rocket launch\tspace-1\t3\nflour oven\tcooking-2\nstock bond\tnope-1\nx\tnope-2\n")
    code = main(["train-mico", str(beir), "--logs", str(logs), "--shards", str(K), "--out", str(tmp_path / "m"),
                 "--encoder", str(tiny_model_dir), "--max-length", "32", "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "'nope-1'" in err and "not in the corpus" in err and len(err.strip().splitlines()) == 1
    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(json.dumps({"query": f"rocket {w}", "doc_id": "space-1", "clicks": 2})
                              for w in ("orbit", "mars", "lunar")) + "\n")
    code = main(["-q", "train-mico", str(beir), "--logs", str(good), "--shards", str(K), "--out", str(tmp_path / "m"),
                 "--encoder", str(tiny_model_dir), "--max-length", "32", "--epochs", "1", "--batch-size", "2"])
    assert code == 0 and (tmp_path / "m" / "config.json").exists()


def test_warm_start_begins_where_the_init_model_ended(trained: SimpleNamespace, beir: Path, tiny_model_dir: Path,
                                                      tmp_path: Path) -> None:
    # same logs, split and seed: the warm-started run's first validation is the init model's best one
    result = train_from_data([beir], "train", _config(tiny_model_dir, init="model", init_model=str(trained.out),
                                                      max_steps=1), out=tmp_path / "warm")
    assert result.initial_auc == pytest.approx(trained.result.best_auc, abs=1e-6)
    config = json.loads((tmp_path / "warm" / "config.json").read_text())
    assert config["training"]["init"] == "model" and config["training"]["init_model"] == str(trained.out)


def test_warm_start_refuses_a_model_of_another_shape(trained: SimpleNamespace, beir: Path,
                                                     tiny_model_dir: Path) -> None:
    with pytest.raises(ModelError, match="K=4"):
        train_from_data([beir], "train", _config(tiny_model_dir, n_clusters=K + 1, init="model",
                                                 init_model=str(trained.out), max_steps=1), out=None)
    with pytest.raises(ModelError, match="go together"):
        _config(tiny_model_dir, init="model")


def test_topic_validation_split_holds_out_whole_topics(beir: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    from selectsearch.mico.features import embed_queries
    from selectsearch.mico.logs import load_log_pairs
    from selectsearch.mico.trainer import MicoTraining
    from selectsearch.route.shift import topic_split

    pairs = load_log_pairs([beir], "train")
    config = _config(tiny_model_dir, mode="full", init="random", val_split="topics", val_fraction=0.25, max_steps=1)
    method = MicoTraining(pairs, config, None, tmp_path / "cache", progress=False)
    train_q = set(pairs.pair_query[method.train_idx].tolist())
    val_q = set(pairs.pair_query[method.val_idx].tolist())
    assert val_q and not train_q & val_q
    # the split tune-route draws from the same query embeddings: the same validation pairs
    vectors = embed_queries(pairs.query_texts, pairs.query_fingerprint(), method.text_encoder, tmp_path / "cache")
    split = topic_split(pairs.pair_query, pairs.query_texts, fraction=0.25, seed=0, vectors=vectors)
    np.testing.assert_array_equal(split.val, method.val_idx)
    topics = split.query_topic
    assert not set(topics[list(train_q)].tolist()) & set(topics[list(val_q)].tolist())
    random_split = MicoTraining(pairs, _config(tiny_model_dir, mode="full", init="random", val_fraction=0.25,
                                               max_steps=1), None, tmp_path / "cache", progress=False)
    assert not np.array_equal(random_split.val_idx, method.val_idx)  # the default is unchanged: by query
    with pytest.raises(ModelError, match="validation split"):
        _config(tiny_model_dir, val_split="sometimes")
