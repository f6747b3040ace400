"""Task declarations (TOML) and the train-mtl command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mtl_fixtures import make_examples, write_jsonl

from selectsearch.cli import main
from selectsearch.errors import SelectSearchError
from selectsearch.mtl.tasks import load_task_file, prepare_tasks


def write_tasks(tmp_path: Path) -> Path:
    write_jsonl(tmp_path / "cls.jsonl", make_examples(60, "classification", 1), "classification")
    write_jsonl(tmp_path / "reg.jsonl", make_examples(50, "regression", 2, pair=True),
                "regression")
    toml = tmp_path / "tasks.toml"
    toml.write_text(
        '[defaults]\nval_size = 10\n\n'
        '[[task]]\nname = "cls"\npath = "cls.jsonl"\nmax_train = 30\n\n'
        '[[task]]\nname = "reg"\npath = "reg.jsonl"\ntext_pair = "pair"\ntype = "regression"\n'
        'metric = ["pearson", "spearman"]\ntest_fraction = 0.2\n',
        encoding="utf-8")
    return toml


def test_task_file_and_splits(tmp_path: Path) -> None:
    specs = load_task_file(write_tasks(tmp_path))
    assert [s.name for s in specs] == ["cls", "reg"] and specs[0].val_size == 10
    tasks = prepare_tasks(specs)
    cls, reg = tasks
    assert (len(cls.train), len(cls.val), len(cls.test)) == (30, 10, 12)
    assert (len(reg.train), len(reg.val), len(reg.test)) == (30, 10, 10)
    assert cls.data.label_names == ["one", "two", "zero"] and cls.num_labels == 3
    assert reg.kind == "regression" and reg.train[0].text_b is not None
    assert reg.data.metrics == ("pearson", "spearman")
    texts = {e.text_a for e in cls.train} & {e.text_a for e in cls.val}
    assert len(texts) <= len(cls.val)  # held out by index, duplicates of text may exist


def test_task_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[task]]\nname = "x"\nsource = "sst2"\ncolour = "red"\n')
    with pytest.raises(SelectSearchError, match="unknown key"):
        load_task_file(bad)
    bad.write_text('[[task]]\nname = "x"\n')
    with pytest.raises(SelectSearchError, match="exactly one of"):
        load_task_file(bad)
    bad.write_text("")
    with pytest.raises(SelectSearchError, match="at least one"):
        load_task_file(bad)


def test_cli_trains_and_writes_results(tmp_path: Path, tiny_model_dir: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    toml = write_tasks(tmp_path)
    out = tmp_path / "run"
    code = main(["-q", "train-mtl", str(toml), "--method", "async-kd", "--out", str(out),
                 "--encoder", str(tiny_model_dir), "--steps", "6", "--eval-every", "2",
                 "--batch-size", "8", "--frozen-layers", "1", "--max-length", "16",
                 "--patience", "1", "--checkpoint-every", "3", "--keep-checkpoints", "2",
                 "--threads", "1"])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["tasks"]) == {"cls", "reg"} and results["step"] == 6
    assert (out / "model" / "mtl_model.json").exists() and (out / "log.jsonl").exists()
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["method"] == "async-kd"
    # resume from the checkpoint at step 3 in a new folder
    code = main(["-q", "train-mtl", str(toml), "--method", "async-kd", "--out",
                 str(tmp_path / "run2"), "--encoder", str(tiny_model_dir), "--steps", "6",
                 "--eval-every", "2", "--batch-size", "8", "--frozen-layers", "1",
                 "--max-length", "16", "--patience", "1", "--threads", "1",
                 "--resume", str(out / "checkpoint-000003"), "--no-save-model"])
    assert code == 0
    again = json.loads((tmp_path / "run2" / "results.json").read_text())
    assert again["average"] == results["average"]


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train-mtl", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "not found" in capsys.readouterr().err


def test_imports_stay_cheap() -> None:
    import subprocess
    import sys

    code = ("import sys, selectsearch.mtl, selectsearch.cli.train_mtl; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
