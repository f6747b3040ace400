"""What a shard's Lucene index is analysed and scored with: the defaults, in one place.

Builds index with Anserini's ``IndexCollection`` defaults — ``DefaultEnglishAnalyzer`` (Porter
stemming, Lucene's English stop words) — and score with BM25 ``k1=0.9, b=0.4`` (Anserini's
defaults for these collections). The build records both in the manifest's ``lucene`` section;
searchers, the sample index and term statistics read them from there
(:class:`selectsearch.index.manifest.LuceneSection`). These values are also what a manifest
written before a key was recorded means.

Example:
    >>> DEFAULT_BM25
    Bm25(k1=0.9, b=0.4)
    >>> analyzer_class(DEFAULT_ANALYZER)
    'io.anserini.analysis.DefaultEnglishAnalyzer'
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_ANALYZER", "DEFAULT_ANALYZER_CLASS", "DEFAULT_BM25", "Bm25", "analyzer_class"]


@dataclass(frozen=True)
class Bm25:
    """BM25 parameters."""

    k1: float = 0.9
    b: float = 0.4


#: what every build scores with (and what a manifest without ``lucene.bm25`` means)
DEFAULT_BM25 = Bm25()

#: the analyzer every build indexes with, as the manifest records it: the Anserini class name first
DEFAULT_ANALYZER = "DefaultEnglishAnalyzer (Porter, Lucene stop words)"


def analyzer_class(recorded: str) -> str:
    """The Java class of an analyzer as a manifest records it (its first word, in Anserini's package)."""
    return f"io.anserini.analysis.{recorded.split(' ', 1)[0]}"


#: Java class of :data:`DEFAULT_ANALYZER`
DEFAULT_ANALYZER_CLASS = analyzer_class(DEFAULT_ANALYZER)
