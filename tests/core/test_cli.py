"""The CLI in-process: verbs work end to end, and bad input gets one line and exit code 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from selectsearch.cli import main


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1] if err else ""


def test_index_search_eval_info(tiny_beir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "idx"
    assert main(["-q", "index", str(tiny_beir), "--out", str(out), "--shards", "3", "--threads", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["documents"] == 120
    assert main(["search", str(out), "--query", "rocket orbit", "--route", "centroid@1", "--k", "3"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["rank", "doc_id", "score", "shard"] and len(table) == 4
    run, trace = tmp_path / "run.trec", tmp_path / "trace.jsonl"
    assert main(["search", str(out), "--queries", str(tiny_beir), "--split", "test", "--route", "random@2",
                 "--k", "10", "--output", str(run), "--trace", str(trace)]) == 0
    lines = run.read_text().splitlines()
    assert len(lines) == 40 and lines[0].split()[1] == "Q0"
    traces = [json.loads(x) for x in trace.read_text().splitlines()]
    assert len(traces) == 4 and all(len(t["shards"]) == 2 for t in traces)
    results = tmp_path / "results.json"
    assert main(["-q", "eval", str(out), "--data", str(tiny_beir), "--split", "test", "--route", "all",
                 "--route", "centroid@1:2", "--measures", "nDCG@10", "R@100", "--json", str(results),
                 "--run-dir", str(tmp_path / "runs")]) == 0
    rows = json.loads(results.read_text())
    assert [r["route"] for r in rows] == ["all", "centroid@1", "centroid@2"]
    assert {"nDCG@10", "R@100", "coverage", "overlap@10"} <= set(rows[0]["metrics"])
    assert rows[0]["cost"]["fraction_scored"] == 1.0
    assert len(list((tmp_path / "runs").glob("*.trec"))) == 3
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    assert "kmeans-lexical" in capsys.readouterr().out


def test_refuses_to_overwrite(tiny_index: Path, tiny_beir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (tiny_index / "manifest.json").read_bytes()
    assert main(["index", str(tiny_beir), "--out", str(tiny_index), "--shards", "2"]) == 2
    assert "--overwrite" in _err(capsys)
    assert (tiny_index / "manifest.json").read_bytes() == before


def test_overwrite_replaces(tiny_beir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    assert main(["-q", "index", str(tiny_beir), "--out", str(out), "--shards", "2", "--threads", "1"]) == 0
    assert main(["-q", "index", str(tiny_beir), "--out", str(out), "--shards", "3", "--threads", "1",
                 "--overwrite", "--partitioner", "random"]) == 0
    assert json.loads((out / "manifest.json").read_text())["partition"]["kind"] == "random"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]


def test_malformed_jsonl_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"_id": "a", "text": "x y"}\n{"_id": "b", "text": "z"\n')
    assert main(["index", str(corpus), "--out", str(tmp_path / "i"), "--shards", "1"]) == 2
    err = _err(capsys)
    assert f"{corpus}:2" in err and "Traceback" not in err
    assert not (tmp_path / "i").exists() and not (tmp_path / "i.partial").exists()


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["index", "{empty}", "--out", "{tmp}/e", "--shards", "2"], "no documents"),
        (["search", "{index}", "--query", "x", "--route", "nope@2"], "unknown router"),
        (["search", "{index}", "--query", "x", "--route", "centroid"], "needs a budget"),
        (["eval", "{index}", "--data", "{beir}", "--split", "dev"], "available splits"),
        (["search", "{tmp}", "--query", "x"], "not a selectsearch index"),
        (["eval", "{index}", "--data", "{beir}", "--measures", "nDCG@ten"], "unknown measure"),
        (["index", "{tmp}/missing.jsonl", "--out", "{tmp}/m"], "missing.jsonl"),
        (["eval", "{index}", "--data", "{beir}", "--router-option", "depth"], "KEY=VALUE"),
    ],
)
def test_bad_input_one_line_exit_2(argv: list[str], needle: str, tiny_index: Path, tiny_beir: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    subs = {"{empty}": str(empty), "{tmp}": str(tmp_path), "{index}": str(tiny_index), "{beir}": str(tiny_beir)}
    args = []
    for a in argv:
        for key, value in subs.items():
            a = a.replace(key, value)
        args.append(a)
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err and err.startswith("selectsearch ")


def test_newer_manifest_version_refused(tiny_index: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    copy = tmp_path / "future"
    shutil.copytree(tiny_index, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["format_version"] = 99
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert main(["info", str(copy)]) == 2
    assert "newer selectsearch" in _err(capsys)


def test_verbose_shows_traceback(tmp_path: Path) -> None:
    from selectsearch.errors import NotAnIndexError

    with pytest.raises(NotAnIndexError):
        main(["-v", "info", str(tmp_path)])


def _default_sigint() -> None:
    """Give the child a terminal's Ctrl-C handling even when this test runs in the background
    (``cmd &`` starts children with SIGINT ignored, and Python then installs no handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.integration
def test_sigint_during_build_leaves_no_index(scifact_dir: Path, tiny_index: Path, tmp_path: Path) -> None:
    """Ctrl-C at several points of a real build: never a folder that opens as an index."""
    from selectsearch.errors import NotAnIndexError
    from selectsearch.index.sharded import ShardedIndex

    for delay in (0.2, 2.5):
        out = tmp_path / f"interrupted-{delay}"
        partial = out.with_name(out.name + ".partial")
        proc = subprocess.Popen([sys.executable, "-m", "selectsearch", "-q", "index", str(scifact_dir), "--out",
                                 str(out), "--shards", "8", "--threads", "2"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                preexec_fn=_default_sigint)
        # interrupt at points of the build itself, timed from its start (not from interpreter start-up,
        # whose length depends on the machine's load)
        deadline = time.monotonic() + 60
        while not partial.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGINT)  # like Ctrl-C in a terminal: the whole process group
        _, err = proc.communicate(timeout=60)
        assert proc.returncode != 0, err.decode(errors="replace")[-500:]
        assert not out.exists(), "an interrupted build must not publish the index"
        if partial.exists():  # only a hard kill could leave it; it never opens as an index
            with pytest.raises(NotAnIndexError):
                ShardedIndex.open(partial)
    # an existing index is untouched by an interrupted --overwrite
    before = (tiny_index / "manifest.json").read_bytes()
    proc = subprocess.Popen([sys.executable, "-m", "selectsearch", "-q", "index", str(scifact_dir), "--out",
                             str(tiny_index), "--shards", "4", "--overwrite"], start_new_session=True,
                            preexec_fn=_default_sigint,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(2.0)
    os.killpg(proc.pid, signal.SIGINT)
    proc.communicate(timeout=60)
    assert (tiny_index / "manifest.json").read_bytes() == before
    assert ShardedIndex.open(tiny_index).n_docs == 120
