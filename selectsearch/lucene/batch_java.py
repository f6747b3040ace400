"""Java source of ``selectsearch.BatchSearch``: a batch of queries searched in one call into Java.

Why a batch engine in Java: per query, the pyjnius path crossed JNI five to seven times (build the
query, pick or build a subset searcher, search, copy doc ids, copy scores), each crossing costing
microseconds of argument conversion, and searched a subset of shards through a second
``IndexSearcher`` whose term statistics came from the first. Here a whole batch crosses once:
texts, per-query shard lists and ``k`` go in; one ``byte[]`` of offsets, global doc ids and scores
comes out (:mod:`selectsearch.lucene.searcher` reads it with ``numpy.frombuffer``).

Inside, per query:

* the query is Anserini's own ``BagOfWordsQueryGenerator`` output (called reflectively: the
  machine's ``javac`` may be older than the Java 21 Anserini jar, so we cannot compile against
  it), so terms, boosts and clause order are exactly those of the Python-built query;
* a shard is a doc id range of a leaf (a *slice*): a whole leaf when each shard is an index of its
  own, a range of the one leaf when the shards are merged into one index (``--lucene-ranges``);
* each term is looked up once per leaf of the selected shards, terms in sorted order through one
  ``TermsEnum`` per leaf, and the per-leaf term states are handed to Lucene
  (``TermQuery(term, TermStates)``), so building the weight reads no term dictionary again;
  the statistics are the whole collection's: summed over all shards when all are searched,
  else from a bounded cache of collection-wide document frequencies, filled on a miss by looking
  the term up in the other shards (the cost a central statistics table would save);
* the selected slices are scored into one top-k heap, most promising first (query-term weight
  times density, from the lookups just made; the slices of one leaf in the caller's order, a
  router's best shard first), so the competitive threshold rises early and
  Lucene's block-max MaxScore skips more of the later shards; pruning starts as soon as the
  heap holds k hits (we never report total hit counts). The heap breaks ties by global doc id
  whatever the visiting order, and hands the scorer the right bound for that (the worst kept
  score where the shard's next doc ids are still below the worst kept doc id, the next float
  up otherwise), so the top k is exactly Lucene's (score descending, doc id ascending); or, given
  tie ranks (``setTieRanks``: each document's rank among the doc id strings), by rank, so the
  top k is the project's (score descending, doc id string ascending) whatever the sharding;
* with ``threads`` > 1 the slices of a query are scored by a Java thread pool (a large slice cut
  in two until every thread has one), each thread with its own heap, sharing the best full heap's
  bound; the heaps are merged at the end.

One query can also be routed here (``searchRouted``): a ``selectsearch.CoriScorer``
(:mod:`selectsearch.lucene.cori_java`) scores every shard, the best ``budget`` are searched, and
the chosen shards and scores come back with the hits, so a ``cori@M`` query makes one crossing.

Scores are Lucene's own BM25 (same ``Similarity``, same term and collection statistics), so they
are bit-identical to the per-query path's (``tests/core/test_batch_engine.py``).
"""

from __future__ import annotations

__all__ = ["BATCH_CLASS", "BATCH_SOURCE"]

BATCH_CLASS = "selectsearch.BatchSearch"

BATCH_SOURCE = """package selectsearch;

import java.io.IOException;
import java.lang.reflect.Method;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.index.IndexReader;
import org.apache.lucene.index.IndexReaderContext;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.Term;
import org.apache.lucene.index.TermState;
import org.apache.lucene.index.TermStates;
import org.apache.lucene.index.Terms;
import org.apache.lucene.index.TermsEnum;
import org.apache.lucene.search.BooleanClause;
import org.apache.lucene.search.BooleanQuery;
import org.apache.lucene.search.BoostQuery;
import org.apache.lucene.search.BulkScorer;
import org.apache.lucene.search.CollectionStatistics;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.LeafCollector;
import org.apache.lucene.search.Query;
import org.apache.lucene.search.Scorable;
import org.apache.lucene.search.ScoreMode;
import org.apache.lucene.search.TermQuery;
import org.apache.lucene.search.Weight;
import org.apache.lucene.search.similarities.Similarity;
import org.apache.lucene.util.BytesRef;

/**
 * Searches a batch of bag-of-words queries, each over its own shards, with the statistics of the
 * whole collection, and returns every query's top k as primitive arrays in one byte[].
 *
 * <p>One call per batch: queries are analysed and built here (by Anserini's
 * BagOfWordsQueryGenerator, called reflectively), each query term is looked up once per selected
 * shard (terms in sorted order through one TermsEnum per shard), and the selected shards are
 * scored into one top-k collector with dynamic pruning from the moment it holds k hits. Shards are
 * visited most promising first, so the competitive threshold rises early; the collector breaks
 * ties by global doc id (or by the tie ranks set) whatever the visiting order, so the result is
 * exactly Lucene's (score descending, doc id ascending) top k, or the one by rank.
 */
public final class BatchSearch {
  /** Shard visiting order: by doc id (as Lucene), or most promising first. */
  public static final int ORDER_DOCID = 0;
  public static final int ORDER_PROMISE = 1;

  private final IndexReader reader;
  private final StatsSearcher searcher;
  // shard i is the doc ranges [shardMin[i][j], shardMax[i][j]) of leaves shardLeaves[i][j]: whole
  // leaves when each shard is an index of its own, ranges of one leaf when one index holds them all
  private final LeafReaderContext[][] shardLeaves;
  private final int[][] shardMin;
  private final int[][] shardMax;
  private final int[] shardDocs;
  private final String field;
  private final Analyzer analyzer;
  private final Object generator;
  private final Method buildQuery;
  private final DfCache dfCache;
  private TermCache termCache = new TermCache(0);
  private final ExecutorService pool;
  private final int threads;
  private int order = ORDER_PROMISE;
  private int[] tieRanks;  // null: ties by global doc id; else by tieRanks[global doc id]
  private int[] docOfRank;  // the inverse permutation of tieRanks

  /**
   * @param reader all shards, shard i being the reader's i-th sub-reader (a MultiReader)
   * @param similarity BM25 with the index's parameters
   * @param threads Java threads searching one query's shards concurrently (1: the caller's)
   * @param dfCacheSize collection-wide document frequencies kept for subset searches (terms)
   */
  public BatchSearch(IndexReader reader, Similarity similarity, Analyzer analyzer, String field, int threads,
                     int dfCacheSize) throws ReflectiveOperationException {
    this(reader, null, similarity, analyzer, field, threads, dfCacheSize);
  }

  /**
   * @param reader all shards' documents, in shard order
   * @param shardSizes documents of each shard: shard i is the reader's doc ids [base_i, base_i +
   *     shardSizes[i]), base_i the sizes before it (null: shard i is the reader's i-th sub-reader).
   *     One index holding every shard as a doc id range is looked up once per term per query
   *     whatever the shards searched; separate shard indexes once per term per shard searched.
   */
  public BatchSearch(IndexReader reader, int[] shardSizes, Similarity similarity, Analyzer analyzer, String field,
                     int threads, int dfCacheSize) throws ReflectiveOperationException {
    this.reader = reader;
    this.searcher = new StatsSearcher(reader);
    this.searcher.setSimilarity(similarity);
    this.searcher.setQueryCache(null);
    IndexReaderContext top = reader.getContext();
    List<IndexReaderContext> children = top.children();
    int n = shardSizes != null ? shardSizes.length : children == null ? 1 : children.size();  // a leaf: one shard
    this.shardDocs = new int[n];
    long total = 0;
    for (int i = 0; i < n; i++) {
      shardDocs[i] = shardSizes != null ? shardSizes[i]
                     : children == null ? reader.maxDoc() : children.get(i).reader().maxDoc();
      if (shardDocs[i] < 0) {
        throw new IllegalArgumentException("shard " + i + " has " + shardDocs[i] + " documents");
      }
      total += shardDocs[i];
    }
    if (total != reader.maxDoc()) {
      throw new IllegalArgumentException("the shards hold " + total + " documents, the reader " + reader.maxDoc());
    }
    this.shardLeaves = new LeafReaderContext[n][];
    this.shardMin = new int[n][];
    this.shardMax = new int[n][];
    List<LeafReaderContext> all = top.leaves();
    int base = 0;
    for (int i = 0; i < n; i++) {  // shard i's range cut by the leaves it overlaps
      int lo = base;
      int hi = base + shardDocs[i];
      List<LeafReaderContext> mine = new ArrayList<>();
      List<int[]> range = new ArrayList<>();
      for (LeafReaderContext leaf : all) {
        int from = Math.max(lo, leaf.docBase);
        int to = Math.min(hi, leaf.docBase + leaf.reader().maxDoc());
        if (from < to) {
          mine.add(leaf);
          range.add(new int[] {from - leaf.docBase, to - leaf.docBase});
        }
      }
      shardLeaves[i] = mine.toArray(new LeafReaderContext[0]);
      shardMin[i] = new int[range.size()];
      shardMax[i] = new int[range.size()];
      for (int j = 0; j < range.size(); j++) {
        shardMin[i][j] = range.get(j)[0];
        shardMax[i][j] = range.get(j)[1];
      }
      base = hi;
    }
    this.field = field;
    this.analyzer = analyzer;
    Class<?> gen = Class.forName("io.anserini.search.query.BagOfWordsQueryGenerator");
    this.generator = gen.getConstructor().newInstance();
    this.buildQuery = gen.getMethod("buildQuery", String.class, Analyzer.class, String.class);
    this.dfCache = new DfCache(Math.max(0, dfCacheSize));
    this.threads = Math.max(1, threads);
    this.pool = this.threads > 1 ? Executors.newFixedThreadPool(this.threads, r -> {
      Thread t = new Thread(r, "selectsearch-batch");
      t.setDaemon(true);
      return t;
    }) : null;
  }

  public int numShards() {
    return shardLeaves.length;
  }

  /** ORDER_DOCID or ORDER_PROMISE (the default); results are identical, only the cost differs. */
  public synchronized void setOrder(int order) {
    this.order = order;
  }

  /**
   * Keep the per-shard term states of recently searched terms, at most states term states in
   * all (a term takes one per shard; 0, the default: off). Results are identical either way.
   */
  public synchronized void setTermCache(int states) {
    int leaves = Math.max(1, searcher.getIndexReader().leaves().size());
    this.termCache = new TermCache(Math.max(0, states) / leaves);
  }

  public void close() {
    if (pool != null) {
      pool.shutdownNow();
    }
  }

  /**
   * Break ties by a rank per global doc id instead of by the doc id (null: by the doc id): the top
   * k is then the k best by (score descending, rank ascending), and hits come back in that order.
   *
   * @param ranks little-endian int32, one per document of the reader (maxDoc), or null
   */
  public synchronized void setTieRanks(byte[] ranks) {
    if (ranks == null) {
      tieRanks = null;
      docOfRank = null;
      return;
    }
    if (ranks.length != 4L * reader.maxDoc()) {
      throw new IllegalArgumentException(
          "tie ranks for " + ranks.length / 4 + " documents, the reader has " + reader.maxDoc());
    }
    int[] r = new int[reader.maxDoc()];
    ByteBuffer.wrap(ranks).order(ByteOrder.LITTLE_ENDIAN).asIntBuffer().get(r);
    int[] inverse = new int[r.length];
    Arrays.fill(inverse, -1);
    for (int d = 0; d < r.length; d++) {
      if (r[d] < 0 || r[d] >= r.length || inverse[r[d]] != -1) {
        throw new IllegalArgumentException("tie ranks are not a permutation of 0.." + (r.length - 1));
      }
      inverse[r[d]] = d;
    }
    tieRanks = r;
    docOfRank = inverse;
  }

  /** The Lucene query Anserini builds for text (what every query of this class searches). */
  public Query build(String text) throws ReflectiveOperationException {
    return (Query) buildQuery.invoke(generator, field, analyzer, text);
  }

  /**
   * Top k of every query over its shards.
   *
   * @param texts the queries
   * @param shardOffsets query i searches shards[shardOffsets[i] .. shardOffsets[i+1]); a null
   *     shardOffsets means every query searches every shard
   * @param shards shard numbers (repeats ignored)
   * @return little-endian int32 offsets (n+1; query i's hits are [off[i], off[i+1])), then int32
   *     global doc ids, then float32 scores; each query's hits best first, ties by doc id (or rank)
   */
  public synchronized byte[] search(String[] texts, int[] shardOffsets, int[] shards, int k) throws Exception {
    int n = texts.length;
    int[][] docs = new int[n][];
    float[][] scores = new float[n][];
    int total = 0;
    for (int i = 0; i < n; i++) {
      int[] selected = null;
      int[] rank = null;  // rank[s]: where shard s first comes in the query's list
      if (shardOffsets != null) {
        selected = select(shards, shardOffsets[i], shardOffsets[i + 1]);
        rank = listRank(shards, shardOffsets[i], shardOffsets[i + 1]);
      }
      Hits h = searchOne(texts[i], selected, rank, k);
      docs[i] = h.docs;
      scores[i] = h.scores;
      total += h.docs.length;
    }
    ByteBuffer out = ByteBuffer.allocate(4 * (n + 1) + 8 * total).order(ByteOrder.LITTLE_ENDIAN);
    int off = 0;
    out.putInt(0);
    for (int i = 0; i < n; i++) {
      off += docs[i].length;
      out.putInt(off);
    }
    for (int i = 0; i < n; i++) {
      out.asIntBuffer().put(docs[i]);
      out.position(out.position() + 4 * docs[i].length);
    }
    for (int i = 0; i < n; i++) {
      out.asFloatBuffer().put(scores[i]);
      out.position(out.position() + 4 * scores[i].length);
    }
    return out.array();
  }

  /**
   * One query's top k over shards (null: every shard), in search's format: one query needs no
   * String[] and offsets built across JNI (about 10 microseconds from Python).
   */
  public byte[] searchQuery(String text, int[] shards, int k) throws Exception {
    return search(new String[] {text}, shards == null ? null : new int[] {0, shards.length}, shards, k);
  }

  /**
   * Routes one query by a CORI scorer and searches the shards it chooses, in one call (no second
   * crossing, no routing in Python): search's format for the one query, then the budget shard
   * ids chosen (int32, best first: score descending, then id), then the scorer's float64 score
   * of every shard.
   *
   * @param engineShard for each of the scorer's shards, this engine's shard number (-1: an empty
   *     shard, which has no Lucene index)
   */
  public synchronized byte[] searchRouted(String text, CoriScorer router, int budget, int[] engineShard, int k)
      throws Exception {
    int n = router.numShards();
    if (engineShard.length != n) {
      throw new IllegalArgumentException(engineShard.length + " engine shards for " + n + " routed shards");
    }
    double[] scores = new double[n];
    router.scoreInto(text, scores, new double[n]);
    int[] chosen = CoriScorer.best(scores, budget);
    int[] searched = new int[chosen.length];
    int m = 0;
    for (int s : chosen) {
      if (engineShard[s] >= 0) {
        searched[m++] = engineShard[s];
      }
    }
    byte[] hits = search(new String[] {text}, new int[] {0, m}, Arrays.copyOf(searched, m), k);
    ByteBuffer out = ByteBuffer.allocate(hits.length + 4 * chosen.length + 8 * n).order(ByteOrder.LITTLE_ENDIAN);
    out.put(hits);
    for (int s : chosen) {
      out.putInt(s);
    }
    for (double x : scores) {
      out.putDouble(x);
    }
    return out.array();
  }

  /** Each shard's first position in shards[from..to) (others: the list's length). */
  private int[] listRank(int[] shards, int from, int to) {
    int[] rank = new int[shardLeaves.length];
    Arrays.fill(rank, to - from);
    for (int i = to - 1; i >= from; i--) {
      rank[shards[i]] = i - from;
    }
    return rank;
  }

  private int[] select(int[] shards, int from, int to) {
    int[] s = Arrays.copyOfRange(shards, from, to);
    Arrays.sort(s);
    int m = 0;
    for (int i = 0; i < s.length; i++) {
      if (s[i] < 0 || s[i] >= shardLeaves.length) {
        throw new IllegalArgumentException("no shard " + s[i] + " (" + shardLeaves.length + " shards)");
      }
      if (m == 0 || s[m - 1] != s[i]) {
        s[m++] = s[i];
      }
    }
    return Arrays.copyOf(s, m);
  }

  /** One query's hits, best first. */
  static final class Hits {
    final int[] docs;
    final float[] scores;

    Hits(int[] docs, float[] scores) {
      this.docs = docs;
      this.scores = scores;
    }
  }

  private static final Hits EMPTY = new Hits(new int[0], new float[0]);

  /**
   * A doc id range [min, max) of leaves.get(leaf), the unit the engine scores; rank: the best
   * position of its shards in the caller's list (a router's lists come best first).
   */
  static final class Slice {
    final int leaf;
    final int min;
    int max;
    int rank;

    Slice(int leaf, int min, int max, int rank) {
      this.leaf = leaf;
      this.min = min;
      this.max = max;
      this.rank = rank;
    }
  }

  /**
   * One query's top k over the selected shards (sorted, distinct; null: all), listRank giving
   * each shard's position in the caller's list (null: doc id order).
   */
  Hits searchOne(String text, int[] selected, int[] listRank, int k) throws Exception {
    IndexReaderContext top = searcher.getTopReaderContext();
    // the selected shards' slices, adjacent ranges of a leaf joined (every shard of one index
    // holding them all: one slice, the whole leaf), and the distinct leaves they lie in
    List<LeafReaderContext> leaves = new ArrayList<>();
    List<Slice> slices = new ArrayList<>();
    int[] leafIndex = new int[top.leaves().size()];
    Arrays.fill(leafIndex, -1);
    int maxDoc = 0;
    int nShards = selected == null ? shardLeaves.length : selected.length;
    for (int i = 0; i < nShards; i++) {
      int s = selected == null ? i : selected[i];
      for (int j = 0; j < shardLeaves[s].length; j++) {
        LeafReaderContext leaf = shardLeaves[s][j];
        if (leafIndex[leaf.ord] < 0) {
          leafIndex[leaf.ord] = leaves.size();
          leaves.add(leaf);
        }
        int l = leafIndex[leaf.ord];
        int rank = listRank == null ? 0 : listRank[s];
        Slice last = slices.isEmpty() ? null : slices.get(slices.size() - 1);
        if (last != null && last.leaf == l && last.max == shardMin[s][j]) {
          last.max = shardMax[s][j];
          last.rank = Math.min(last.rank, rank);
        } else {
          slices.add(new Slice(l, shardMin[s][j], shardMax[s][j], rank));
        }
      }
      maxDoc += shardDocs[s];
    }
    boolean allLeaves = leaves.size() == top.leaves().size();
    if (leaves.isEmpty() || maxDoc == 0 || k <= 0) {
      return EMPTY;
    }
    while (pool != null && slices.size() < threads) {  // one index: cut its ranges so every thread has one
      Slice widest = slices.get(0);
      for (Slice x : slices) {
        widest = x.max - x.min > widest.max - widest.min ? x : widest;
      }
      if (widest.max - widest.min < 2 * 128) {
        break;  // halves under a postings block (128 documents) are not worth a scorer of their own
      }
      int mid = widest.min + (widest.max - widest.min) / 2;
      slices.add(slices.indexOf(widest) + 1, new Slice(widest.leaf, mid, widest.max, widest.rank));
      widest.max = mid;
    }
    Query built = build(text);
    // the clauses Anserini built: one SHOULD clause per distinct term, boosted by its count
    List<BooleanClause> clauses = built instanceof BooleanQuery ? ((BooleanQuery) built).clauses() : null;
    if (clauses == null) {
      throw new IllegalStateException("not a bag-of-words query: " + built);
    }
    int nt = clauses.size();
    Term[] terms = new Term[nt];
    float[] boosts = new float[nt];
    for (int t = 0; t < nt; t++) {
      Query q = clauses.get(t).getQuery();
      float boost = 1f;
      if (q instanceof BoostQuery) {
        boost = ((BoostQuery) q).getBoost();
        q = ((BoostQuery) q).getQuery();
      }
      if (!(q instanceof TermQuery) || clauses.get(t).getOccur() != BooleanClause.Occur.SHOULD) {
        throw new IllegalStateException("not a bag-of-words query: " + built);
      }
      terms[t] = ((TermQuery) q).getTerm();
      boosts[t] = boost;
    }
    if (nt == 0) {
      return EMPTY;
    }
    Integer[] sorted = new Integer[nt];
    for (int t = 0; t < nt; t++) {
      sorted[t] = t;
    }
    Arrays.sort(sorted, (a, b) -> terms[a].bytes().compareTo(terms[b].bytes()));
    // each term's state in every selected leaf and its collection-wide statistics: from the
    // term cache, else looked up (terms in sorted order, one TermsEnum per leaf)
    int nl = leaves.size();
    TermState[][] states = new TermState[nt][nl];
    int[][] leafDf = new int[nt][nl];
    long[] df = new long[nt];
    long[] ttf = new long[nt];
    List<Integer> missing = new ArrayList<>();
    for (int t : sorted) {
      TermEntry e = termCache.get(terms[t].bytes());
      if (e == null) {
        missing.add(t);
        continue;
      }
      for (int l = 0; l < nl; l++) {
        int ord = leaves.get(l).ord;
        states[t][l] = e.states[ord];
        leafDf[t][l] = e.leafDf[ord];
      }
      df[t] = e.df;
      ttf[t] = e.ttf;
    }
    if (!missing.isEmpty() && (allLeaves || termCache.enabled())) {
      // every leaf: complete entries, whose sums are the collection's statistics
      List<LeafReaderContext> every = top.leaves();
      TermState[][] allStates = new TermState[nt][];
      int[][] allDf = new int[nt][];
      for (int t : missing) {
        allStates[t] = new TermState[every.size()];
        allDf[t] = new int[every.size()];
      }
      lookup(every, terms, missing, allStates, allDf, df, ttf);
      for (int t : missing) {
        termCache.put(terms[t].bytes(), new TermEntry(allStates[t], allDf[t], df[t], ttf[t]));
        dfCache.put(terms[t].bytes(), df[t], ttf[t]);
        for (int l = 0; l < nl; l++) {
          int ord = leaves.get(l).ord;
          states[t][l] = allStates[t][ord];
          leafDf[t][l] = allDf[t][ord];
        }
      }
    } else if (!missing.isEmpty()) {
      lookup(leaves, terms, missing, states, leafDf, df, ttf);  // the selected leaves only
      globalStats(terms, missing, df, ttf, leafIndex);
    }
    BooleanQuery.Builder builder = new BooleanQuery.Builder();
    builder.setMinimumNumberShouldMatch(((BooleanQuery) built).getMinimumNumberShouldMatch());
    boolean[] present = new boolean[nt];
    for (int t = 0; t < nt; t++) {
      TermStates st = new TermStates(top);
      for (int l = 0; l < nl; l++) {
        if (states[t][l] != null) {
          st.register(states[t][l], leaves.get(l).ord);
          present[t] = true;
        }
      }
      if (present[t]) {  // the statistics of the whole collection, as one index would have
        st.accumulateStatistics((int) df[t], ttf[t]);
      }
      Query tq = new TermQuery(terms[t], st);
      builder.add(boosts[t] == 1f && !(clauses.get(t).getQuery() instanceof BoostQuery) ? tq
                  : new BoostQuery(tq, boosts[t]), BooleanClause.Occur.SHOULD);
    }
    Weight weight = searcher.createWeight(searcher.rewrite(builder.build()), ScoreMode.TOP_SCORES, 1f);
    int[] visit = visitingOrder(leaves, slices, leafDf, df, boosts, present);
    int capacity = Math.min(k, maxDoc);
    int ns = slices.size();
    if (pool == null || ns < 2) {
      TopK topk = new TopK(capacity, null, tieRanks, docOfRank);
      scoreSlices(weight, leaves, slices, visit, 0, 1, topk);
      return topk.hits();
    }
    AtomicLong bound = new AtomicLong(Long.MIN_VALUE);
    int parts = Math.min(threads, ns);
    List<Future<TopK>> futures = new ArrayList<>();
    for (int p = 0; p < parts; p++) {
      final int part = p;
      futures.add(pool.submit(() -> {
        TopK topk = new TopK(capacity, bound, tieRanks, docOfRank);
        scoreSlices(weight, leaves, slices, visit, part, parts, topk);
        return topk;
      }));
    }
    TopK merged = new TopK(capacity, null, tieRanks, docOfRank);
    for (Future<TopK> f : futures) {
      merged.addAll(f.get());
    }
    return merged.hits();
  }

  /**
   * Scores slices visit[from], visit[from + step], ... into topk. A leaf's bulk scorer only moves
   * forward, so it serves the next slice of the same leaf that starts at or after where it stopped
   * (Lucene scores a leaf window by window the same way); any other slice gets a new one, built
   * from the term states already looked up (no term dictionary is read again).
   */
  private static void scoreSlices(Weight weight, List<LeafReaderContext> leaves, List<Slice> slices, int[] visit,
                                  int from, int step, TopK topk) throws IOException {
    BulkScorer scorer = null;
    int scorerLeaf = -1;
    int scorerEnd = Integer.MAX_VALUE;
    for (int j = from; j < visit.length; j += step) {
      Slice s = slices.get(visit[j]);
      LeafReaderContext leaf = leaves.get(s.leaf);
      if (s.leaf != scorerLeaf || s.min < scorerEnd) {
        scorer = weight.bulkScorer(leaf);
        scorerLeaf = s.leaf;
      }
      if (scorer == null) {  // no query term in this leaf
        scorerEnd = -1;
        continue;
      }
      scorer.score(topk.leaf(leaf.docBase, s.min), leaf.reader().getLiveDocs(), s.min, s.max);
      scorerEnd = s.max;
    }
  }

  /**
   * Slices most promising first: by the summed weight (boost x idf) of the query terms times
   * their density in the slice's leaf (document frequency / leaf size), an estimate of how many good
   * matches a slice holds that costs nothing beyond the lookups already made. The slices of one
   * leaf share its estimate (the shards of one index: no per-shard frequencies there), so they go
   * in the caller's order, a router's best shard first; then doc id order.
   */
  private int[] visitingOrder(List<LeafReaderContext> leaves, List<Slice> slices, int[][] leafDf, long[] df,
                              float[] boosts, boolean[] present) {
    int ns = slices.size();
    Integer[] idx = new Integer[ns];
    for (int j = 0; j < ns; j++) {
      idx[j] = j;
    }
    if (order == ORDER_PROMISE) {
      double[] promise = new double[leaves.size()];
      double docs = searcher.docCount(field);
      for (int t = 0; t < df.length && leaves.size() > 1; t++) {
        if (!present[t]) {
          continue;
        }
        double idf = Math.log(1 + (docs - df[t] + 0.5) / (df[t] + 0.5));
        for (int l = 0; l < leaves.size(); l++) {
          promise[l] += boosts[t] * idf * leafDf[t][l] / Math.max(1, leaves.get(l).reader().maxDoc());
        }
      }
      // estimate descending, then the caller's rank, then doc id order (idx: a total order)
      Arrays.sort(idx, (a, b) -> {
        Slice x = slices.get(a);
        Slice y = slices.get(b);
        int c = Double.compare(promise[y.leaf], promise[x.leaf]);
        if (c == 0) {
          c = Integer.compare(x.rank, y.rank);
        }
        return c != 0 ? c : Integer.compare(a, b);
      });
    }
    int[] out = new int[ns];
    for (int j = 0; j < ns; j++) {
      out[j] = idx[j];
    }
    return out;
  }

  /**
   * Looks terms (indices into terms, in sorted term order) up in leaves: state and document
   * frequency per leaf into states[t][l] and leafDf[t][l], sums into df[t] and ttf[t].
   */
  private void lookup(List<LeafReaderContext> leaves, Term[] terms, List<Integer> which, TermState[][] states,
                      int[][] leafDf, long[] df, long[] ttf) throws IOException {
    for (int l = 0; l < leaves.size(); l++) {
      Terms ts = leaves.get(l).reader().terms(field);
      if (ts == null) {
        continue;
      }
      TermsEnum te = ts.iterator();
      for (int t : which) {
        if (te.seekExact(terms[t].bytes())) {
          states[t][l] = te.termState();
          leafDf[t][l] = te.docFreq();
          df[t] += te.docFreq();
          ttf[t] += te.totalTermFreq();
        }
      }
    }
  }

  /**
   * Completes df/ttf of terms (so far summed over the selected leaves: leafIndex[ord] >= 0) to
   * the whole collection's.
   */
  private void globalStats(Term[] terms, List<Integer> which, long[] df, long[] ttf, int[] leafIndex)
      throws IOException {
    List<Integer> missing = new ArrayList<>();
    for (int t : which) {
      long[] cached = dfCache.get(terms[t].bytes());
      if (cached != null) {
        df[t] = cached[0];
        ttf[t] = cached[1];
      } else {
        missing.add(t);
      }
    }
    if (missing.isEmpty()) {
      return;
    }
    for (LeafReaderContext leaf : searcher.getTopReaderContext().leaves()) {
      if (leafIndex[leaf.ord] >= 0) {
        continue;
      }
      Terms ts = leaf.reader().terms(field);
      if (ts == null) {
        continue;
      }
      TermsEnum te = ts.iterator();
      for (int t : missing) {
        if (te.seekExact(terms[t].bytes())) {
          df[t] += te.docFreq();
          ttf[t] += te.totalTermFreq();
        }
      }
    }
    for (int t : missing) {
      dfCache.put(terms[t].bytes(), df[t], ttf[t]);
    }
  }

  /** A term's state and document frequency in every leaf (null, 0 where absent), and their sums. */
  static final class TermEntry {
    final TermState[] states;
    final int[] leafDf;
    final long df;
    final long ttf;

    TermEntry(TermState[] states, int[] leafDf, long df, long ttf) {
      this.states = states;
      this.leafDf = leafDf;
      this.df = df;
      this.ttf = ttf;
    }
  }

  /**
   * Term entries of recent queries, least recently used dropped first, at most capacity terms
   * (0: off). A hit saves one term-dictionary lookup per shard.
   */
  static final class TermCache {
    private final int capacity;
    private final LinkedHashMap<BytesRef, TermEntry> map;

    TermCache(int capacity) {
      this.capacity = capacity;
      this.map = new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<BytesRef, TermEntry> eldest) {
          return size() > TermCache.this.capacity;
        }
      };
    }

    boolean enabled() {
      return capacity > 0;
    }

    TermEntry get(BytesRef term) {
      return capacity == 0 ? null : map.get(term);
    }

    void put(BytesRef term, TermEntry entry) {
      if (capacity > 0) {
        map.put(BytesRef.deepCopyOf(term), entry);
      }
    }
  }

  /** Collection-wide document frequencies by term, least recently used dropped first. */
  static final class DfCache {
    private final int capacity;
    private final LinkedHashMap<BytesRef, long[]> map;

    DfCache(int capacity) {
      this.capacity = capacity;
      this.map = new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<BytesRef, long[]> eldest) {
          return size() > DfCache.this.capacity;
        }
      };
    }

    long[] get(BytesRef term) {
      return capacity == 0 ? null : map.get(term);
    }

    void put(BytesRef term, long df, long ttf) {
      if (capacity > 0) {
        map.put(BytesRef.deepCopyOf(term), new long[] {df, ttf});
      }
    }
  }

  /** The all-shards searcher, with its (immutable) collection statistics computed once per field. */
  static final class StatsSearcher extends IndexSearcher {
    private final Map<String, CollectionStatistics> collection = new HashMap<>();

    StatsSearcher(IndexReader reader) {
      super(reader);
    }

    @Override
    public synchronized CollectionStatistics collectionStatistics(String field) throws IOException {
      CollectionStatistics stats = collection.get(field);
      if (stats == null && !collection.containsKey(field)) {
        stats = super.collectionStatistics(field);
        collection.put(field, stats);
      }
      return stats;
    }

    double docCount(String field) {
      try {
        CollectionStatistics stats = collectionStatistics(field);
        return stats == null ? 0 : stats.docCount();
      } catch (IOException e) {
        return 0;
      }
    }
  }

  /**
   * The k best (score, global doc id) pairs, best = higher score, then lower tie key (the doc id,
   * or its rank when tie ranks are set), collected from leaves in any order. Once full, the worst
   * kept hit bounds what can still compete, and the leaf's scorer is told so (dynamic pruning).
   * With doc id keys, a doc scoring the same as the worst kept hit competes only if its id is
   * lower, so the bound is that score where the leaf's next doc ids are still below the worst kept
   * doc id, and the next float up after it. With ranks, any later doc may hold a lower rank, so the
   * bound is the worst kept score itself (docs scoring exactly that are still compared).
   *
   * <p>Each hit is one long, (order-preserving score bits, MAX - key): a larger long is a better
   * hit, so the heap compares and moves single longs (at k=1000 the heap was the largest cost of a
   * query over two shards when it kept parallel score and doc arrays), and the final order is one
   * primitive sort.
   */
  static final class TopK {
    private final long[] heap;  // min-heap: the worst kept hit at the root
    private final int[] ranks;  // null: the key is the doc id
    private final int[] docOfRank;
    private int size;
    private final AtomicLong shared;  // best bound published by any full TopK of this query

    TopK(int capacity, AtomicLong shared, int[] ranks, int[] docOfRank) {
      this.heap = new long[Math.max(1, capacity)];
      this.shared = shared;
      this.ranks = ranks;
      this.docOfRank = docOfRank;
    }

    /** Float bits as an int with the same order (negative scores included; NaN never occurs). */
    private static int sortable(float score) {
      int b = Float.floatToIntBits(score);
      return b ^ ((b >> 31) & 0x7fffffff);
    }

    private static float unpackScore(long packed) {
      int b = (int) (packed >> 32);
      return Float.intBitsToFloat(b ^ ((b >> 31) & 0x7fffffff));
    }

    private static int unpackKey(long packed) {
      return Integer.MAX_VALUE - (int) (packed & 0xffffffffL);
    }

    static long pack(float score, int key) {
      return ((long) sortable(score) << 32) | (Integer.MAX_VALUE - key);
    }

    boolean full() {
      return size == heap.length;
    }

    int key(int doc) {
      return ranks == null ? doc : ranks[doc];
    }

    private int doc(long packed) {
      return ranks == null ? unpackKey(packed) : docOfRank[unpackKey(packed)];
    }

    void add(long v) {
      if (size < heap.length) {
        int i = size++;
        while (i > 0) {  // sift up: the worst at the root
          int parent = (i - 1) >>> 1;
          long p = heap[parent];
          if (p <= v) {
            break;
          }
          heap[i] = p;
          i = parent;
        }
        heap[i] = v;
        if (size == heap.length && shared != null) {
          publish();
        }
        return;
      }
      if (v <= heap[0]) {
        return;  // not better than the worst kept
      }
      siftDown(v);
      if (shared != null) {
        publish();
      }
    }

    /** Replaces the root by v and restores the heap. */
    private void siftDown(long v) {
      int i = 0;
      int n = size;
      while (true) {
        int l = 2 * i + 1;
        if (l >= n) {
          break;
        }
        int r = l + 1;
        int w = r < n && heap[r] < heap[l] ? r : l;
        long c = heap[w];
        if (c >= v) {
          break;
        }
        heap[i] = c;
        i = w;
      }
      heap[i] = v;
    }

    private void publish() {
      long mine = heap[0];
      long cur = shared.get();
      while (mine > cur && !shared.compareAndSet(cur, mine)) {
        cur = shared.get();
      }
    }

    void addAll(TopK other) {
      for (int i = 0; i < other.size; i++) {
        add(other.heap[i]);
      }
    }

    /** The lowest score that can still compete for a doc id of at least next (0: anything). */
    private float bound(int next) {
      long worst = Long.MIN_VALUE;
      if (full()) {
        worst = heap[0];
      }
      if (shared != null) {
        worst = Math.max(worst, shared.get());  // Long.MIN_VALUE until some heap is full
      }
      if (worst == Long.MIN_VALUE) {
        return 0f;
      }
      float s = unpackScore(worst);
      return ranks == null && unpackKey(worst) < next ? Math.nextUp(s) : s;
    }

    /** A collector of a leaf's docs from its doc id first on (docBase + first: the global id). */
    LeafCollector leaf(int docBase, int first) {
      return new LeafCollector() {
        private Scorable scorer;
        private float min;

        @Override
        public void setScorer(Scorable scorer) throws IOException {
          this.scorer = scorer;
          this.min = 0f;
          raise(docBase + first);
        }

        private void raise(int next) throws IOException {
          float b = bound(next);
          if (b > min) {
            scorer.setMinCompetitiveScore(b);
            min = b;
          }
        }

        @Override
        public void collect(int doc) throws IOException {
          int global = docBase + doc;
          float score = scorer.score();
          // below the worst kept score: out, without reading the doc's tie rank (a random read
          // into an array of every document's rank, a cache miss per collected doc at 1M docs)
          boolean out = full() && sortable(score) < (int) (heap[0] >> 32);
          long v = out ? Long.MIN_VALUE : pack(score, key(global));
          if (full() && v <= heap[0]) {
            if (shared != null) {
              raise(global + 1);
            }
            return;
          }
          add(v);
          if (full() || shared != null) {
            raise(global + 1);
          }
        }
      };
    }

    /** The kept hits, best first (score descending, then key ascending); empties the heap. */
    Hits hits() {
      int n = size;
      long[] sorted = Arrays.copyOf(heap, n);
      Arrays.sort(sorted);  // worst first
      int[] d = new int[n];
      float[] s = new float[n];
      for (int i = 0; i < n; i++) {
        long v = sorted[n - 1 - i];
        d[i] = doc(v);
        s[i] = unpackScore(v);
      }
      size = 0;
      return new Hits(d, s);
    }
  }
}
"""
