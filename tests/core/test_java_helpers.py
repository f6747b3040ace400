"""The compiled Java helpers change speed, never results (the batch engine: test_batch_engine.py);
without a ``javac`` nothing is compiled."""

from __future__ import annotations

from pathlib import Path

import pytest

from selectsearch.lucene import java_helpers


def test_no_javac_means_no_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELECTSEARCH_CACHE", str(tmp_path))
    monkeypatch.setattr(java_helpers, "_javac", lambda: None)
    assert java_helpers.helper_classpath(tmp_path / "anserini.jar") is None
    assert not (tmp_path / "java").exists() or not any((tmp_path / "java").rglob("*.class"))


@pytest.mark.integration
def test_joined_terms_equal_anserini_analysis() -> None:
    from selectsearch.index.termstats import Analyzer

    analyzer = Analyzer()
    if analyzer._terms is None:
        pytest.skip("no javac on this machine: the helpers are optional")
    texts = ["Vitamin D deficiency and fractures", "", "the and of", "0-dimensional biomaterials show "
             "inductive properties.", "Ωmega-3 fatty acids; 50% risk (CI 1.2–3.4)", "  spaced\tout\nlines  ",
             "p53 U.S. e-mail C++ don't"]
    for text in texts:
        slow = [str(t) for t in analyzer._utils.analyze(analyzer._analyzer, text).toArray()]
        assert analyzer(text) == slow
