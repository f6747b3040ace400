"""Killed builds leave nothing behind (issue 17, item 5).

- a kill during the final swap leaves ``<out>.old-<pid>``: the next build restores or removes it;
- ``SIGTERM`` cleans up like ``SIGINT`` (no ``<out>.partial``, no workers), whether the shards
  are indexed on Java threads of the build's JVM or, without the Java helper, in worker processes;
- index workers die with their parent (``SIGKILL`` of the build).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from selectsearch.cli import main

WORDS = ["rocket", "orbit", "oven", "flour", "stock", "bond", "cell", "gene", "river", "stone", "music", "piano"]


def _corpus(path: Path, n: int, words_per_doc: int = 12) -> Path:
    rng = random.Random(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for i in range(n):
            text = " ".join(rng.choice(WORDS) + str(rng.randint(0, 999)) for _ in range(words_per_doc))
            f.write(json.dumps({"_id": f"d{i}", "title": "", "text": text}) + "\n")
    return path


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _build(corpus: Path, out: Path, *extra: str) -> int:
    return main(["-q", "index", str(corpus), "--out", str(out), "--shards", "2", "--threads", "1",
                 "--partitioner", "random", *extra])


def test_old_folder_of_a_finished_swap_is_removed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    corpus = _corpus(tmp_path / "c.jsonl", 10)
    out = tmp_path / "idx"
    assert _build(corpus, out) == 0
    old = tmp_path / f"idx.old-{_dead_pid()}"
    shutil.copytree(out, old)  # killed after the new index was moved in, before the old one was deleted
    assert _build(corpus, out, "--overwrite") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.jsonl", "idx"]
    assert any("idx.old-" in r.getMessage() for r in caplog.records)


def test_swap_killed_between_renames_restores_the_old_index(tmp_path: Path) -> None:
    """Killed after the old index was moved aside, before the new one was moved in."""
    from selectsearch.index.build import _PARTIAL_MARKER

    corpus = _corpus(tmp_path / "c.jsonl", 10)
    out = tmp_path / "idx"
    assert _build(corpus, out) == 0
    before = (out / "manifest.json").read_bytes()
    pid = _dead_pid()
    os.replace(out, tmp_path / f"idx.old-{pid}")
    partial = tmp_path / "idx.partial"  # the new build, complete in .partial ...
    shutil.copytree(tmp_path / f"idx.old-{pid}", partial)
    (partial / _PARTIAL_MARKER).write_text(f"pid {pid}\n")  # ... as _publish leaves it before the swap
    # the next build without --overwrite: the user's index is back, and nothing is replaced
    assert _build(corpus, out) == 2
    assert (out / "manifest.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.jsonl", "idx"]


def test_partial_of_a_running_build_is_not_deleted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from selectsearch.index.build import _PARTIAL_MARKER

    corpus = _corpus(tmp_path / "c.jsonl", 10)
    partial = tmp_path / "idx.partial"
    partial.mkdir()
    (partial / _PARTIAL_MARKER).write_text(f"pid {os.getppid()}\n")  # a live process
    assert _build(corpus, tmp_path / "idx") == 2
    assert "another build" in capsys.readouterr().err
    assert partial.exists()


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


#: runs the CLI as a build without the compiled Java helper does: shards indexed in worker processes
_WITHOUT_HELPER = ("import sys, selectsearch.lucene.indexer as indexer; "
                   "indexer.index_shards_in_jvm = lambda *args, **kwargs: None; "
                   "from selectsearch.cli import main; sys.exit(main(sys.argv[1:]))")


def _start_build(corpus: Path, out: Path, mode: str = "workers") -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    run = ["-m", "selectsearch"] if mode == "java-threads" else ["-c", _WITHOUT_HELPER]
    return subprocess.Popen([sys.executable, *run, "-q", "index", str(corpus), "--out", str(out),
                             "--shards", "4", "--threads", "2", "--partitioner", "random"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, env=env)


def _wait_for_workers(proc: subprocess.Popen[bytes], partial: Path, timeout: float = 90) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        workers = _children(proc.pid)
        if partial.exists() and len(workers) == 2 and all(
                "index_worker" in Path(f"/proc/{w}/cmdline").read_text(errors="replace") for w in workers):
            return workers
        time.sleep(0.05)
    raise AssertionError(f"no workers started: {proc.communicate()[1].decode(errors='replace')[-800:]}")


def _wait_for_lucene(proc: subprocess.Popen[bytes], partial: Path, timeout: float = 90) -> None:
    """Until Lucene writes a shard index of the build (on the build's Java threads)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if any(partial.glob("shards/*/lucene")):
            assert not _children(proc.pid), "worker processes were started although the Java helper is available"
            return
        time.sleep(0.05)
    raise AssertionError(f"no shard was indexed: {proc.communicate()[1].decode(errors='replace')[-800:]}")


@pytest.fixture(scope="module")
def big_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # enough text for the workers to index for several seconds
    return _corpus(tmp_path_factory.mktemp("big") / "c.jsonl", 60_000, words_per_doc=40)


@pytest.mark.parametrize("mode", ["java-threads", "workers"])
def test_sigterm_cleans_up_like_sigint(big_corpus: Path, tmp_path: Path, mode: str) -> None:
    out = tmp_path / "idx"
    proc = _start_build(big_corpus, out, mode)
    if mode == "workers":
        workers = _wait_for_workers(proc, tmp_path / "idx.partial")
        time.sleep(1.0)
    else:
        _wait_for_lucene(proc, tmp_path / "idx.partial")
        workers = []
        time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert not out.exists() and not (tmp_path / "idx.partial").exists(), err.decode(errors="replace")[-500:]
    deadline = time.monotonic() + 5
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(w) for w in workers)


def test_workers_die_with_their_parent(big_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "idx"
    proc = _start_build(big_corpus, out)
    workers = _wait_for_workers(proc, tmp_path / "idx.partial")
    time.sleep(1.0)
    proc.kill()
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 1.5
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = [w for w in workers if _alive(w)]
    for w in alive:  # do not leave them running if the test fails
        os.kill(w, signal.SIGKILL)
    assert not alive, "index workers kept running after their parent was killed"
    # and the next build cleans the .partial the kill left
    small = _corpus(tmp_path / "small.jsonl", 10)
    assert main(["-q", "index", str(small), "--out", str(out), "--shards", "2", "--threads", "1"]) == 0
    assert not (tmp_path / "idx.partial").exists()
