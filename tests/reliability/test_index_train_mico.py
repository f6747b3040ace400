"""``train-mico`` keeps what a user has (issue 17, items 6 and 16).

A rerun without ``--resume`` does not silently discard a checkpoint; the model folder is written
atomically and never replaces a folder that is not a model; ``--resume`` loads tensors only; an
empty logs file fails at once, before any encoding; progress is logged without a terminal.
"""

from __future__ import annotations

import json
import logging
import os
import random
from pathlib import Path

import pytest
import torch

from selectsearch.cli import main

TOPICS = {"space": ["rocket", "orbit", "planet", "launch", "mars"],
          "cooking": ["oven", "flour", "sugar", "bake", "pasta"],
          "finance": ["stock", "bond", "bank", "loan", "market"],
          "biology": ["cell", "gene", "dna", "enzyme", "neuron"]}


@pytest.fixture(scope="module")
def beir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(0)
    folder = tmp_path_factory.mktemp("mico-rel") / "beir"
    (folder / "qrels").mkdir(parents=True)
    queries, qrels = {}, []
    with (folder / "corpus.jsonl").open("w") as f:
        for topic, words in TOPICS.items():
            for i in range(12):
                f.write(json.dumps({"_id": f"{topic}-{i}", "title": "",
                                    "text": " ".join(rng.choice(words) for _ in range(8))}) + "\n")
            for i in range(8):
                queries[f"q-{topic}-{i}"] = " ".join(rng.sample(words, 2))
                qrels.append((f"q-{topic}-{i}", f"{topic}-{rng.randrange(12)}"))
    with (folder / "queries.jsonl").open("w") as f:
        for qid, text in queries.items():
            f.write(json.dumps({"_id": qid, "text": text}) + "\n")
    with (folder / "qrels" / "train.tsv").open("w") as f:
        f.write("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, d in qrels))
    return folder


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from selectsearch.models.encoder import tiny_encoder

    tokenizer, model = tiny_encoder(hidden_size=32, layers=1, heads=2, seed=0)
    folder = tmp_path_factory.mktemp("tiny-encoder")
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELECTSEARCH_CACHE", str(tmp_path / "cache"))


def _train(beir: Path, encoder: Path, out: Path, *extra: str) -> int:
    return main(["train-mico", str(beir), "--logs", "train", "--shards", "4", "--out", str(out), "--encoder",
                 str(encoder), "--max-length", "16", "--epochs", "1", "--batch-size", "8", *extra])


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_rerun_without_resume_refuses_to_discard_the_checkpoint(beir: Path, encoder: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str],
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "m"
    assert _train(beir, encoder, out, "--seed", "0") == 0
    checkpoint = tmp_path / "m.checkpoint" / "checkpoint.pt"
    before = checkpoint.read_bytes()
    capsys.readouterr()
    assert _train(beir, encoder, tmp_path / "m2", "--checkpoint", str(checkpoint.parent)) == 2
    err = _one_line(capsys)
    assert "--resume" in err and "--overwrite" in err
    assert checkpoint.read_bytes() == before and not (tmp_path / "m2").exists()
    # --resume continues it (tensors only), --overwrite starts over and says so
    assert _train(beir, encoder, tmp_path / "m3", "--checkpoint", str(checkpoint.parent), "--resume") == 0
    assert _train(beir, encoder, tmp_path / "m4", "--checkpoint", str(checkpoint.parent), "--overwrite") == 0
    assert any("will be replaced" in r.getMessage() for r in caplog.records)


def test_model_folder_is_written_atomically(beir: Path, encoder: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import selectsearch.mico.model as model_module

    out = tmp_path / "m"
    assert _train(beir, encoder, out) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    real_save = model_module.save_model

    def crash_half_way(folder: Path, **kwargs: object) -> Path:
        real_save(folder, **kwargs)  # type: ignore[arg-type]
        (Path(folder) / "config.json").unlink()
        raise OSError("disk full")

    monkeypatch.setattr("selectsearch.mico.trainer.save_model", crash_half_way)
    with pytest.raises(OSError, match="disk full"):
        main(["-v", "train-mico", str(beir), "--logs", "train", "--shards", "4", "--out", str(out), "--encoder",
              str(encoder), "--max-length", "16", "--epochs", "1", "--batch-size", "8", "--seed", "5",
              "--overwrite"])
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("m")) == ["m", "m.checkpoint"]


def test_overwrite_refuses_a_folder_that_is_not_a_model(beir: Path, encoder: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("precious")
    assert _train(beir, encoder, out, "--overwrite") == 2
    assert "not a MICO model" in _one_line(capsys)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (str(self.marker),)


def test_resume_loads_tensors_only(beir: Path, encoder: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    marker = tmp_path / "code-ran"
    torch.save({"weights": _Evil(marker)}, ckpt / "checkpoint.pt")
    (ckpt / "state.json").write_text(json.dumps({"step": 3, "epoch": 0}))
    assert _train(beir, encoder, tmp_path / "m", "--checkpoint", str(ckpt), "--resume") == 2
    assert "tensors only" in _one_line(capsys)
    assert not marker.exists(), "loading the checkpoint ran code"


def test_empty_logs_file_fails_before_encoding(beir: Path, encoder: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def no_encoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("the corpus was encoded before the logs were checked")

    monkeypatch.setattr("selectsearch.mico.run.corpus_vectors", no_encoding)
    logs = tmp_path / "clicks.tsv"
    logs.write_text("")
    code = main(["train-mico", str(beir), "--logs", str(logs), "--shards", "4", "--out", str(tmp_path / "m"),
                 "--encoder", str(encoder), "--max-length", "16"])
    assert code == 2
    err = _one_line(capsys)
    assert str(logs) in err and "no log records" in err
    one = tmp_path / "one.tsv"
    one.write_text("rocket orbit\tspace-1\nrocket orbit\tspace-2\n")
    code = main(["train-mico", str(beir), "--logs", str(one), "--shards", "4", "--out", str(tmp_path / "m"),
                 "--encoder", str(encoder), "--max-length", "16"])
    assert code == 2 and "at least 2" in _one_line(capsys)


def test_progress_is_logged_without_a_terminal(beir: Path, encoder: Path, tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("selectsearch.mico.trainer.PROGRESS_LOG_SECONDS", 0.0, raising=False)
    with caplog.at_level(logging.INFO, logger="selectsearch"):
        assert _train(beir, encoder, tmp_path / "m") == 0  # pytest's stderr is not a terminal: no bars
    steps = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step ") and " of " in
             r.getMessage()]
    assert steps, [r.getMessage() for r in caplog.records]
