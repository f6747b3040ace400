"""Java source of ``selectsearch.CoriScorer``: CORI's shard scores of a batch of queries in one call.

Why in Java: routing a query by CORI in Python crossed JNI to analyse the text, then made a dozen
small numpy calls (term ids, a gather of the terms' beliefs, a mean) and a ranking — 0.06 ms
per query in a loop of its own, but 0.14-0.28 ms between searches (after a search has filled the
caches, every one of those calls starts cold; ``eval/results/cost/engine-profile.md``). That was
a third of a selective query at k=10 and a quarter at k=1000. Here the analysis, the vocabulary
lookup, the gather and the mean happen in one call per batch, over arrays handed over once.

The numbers are the Python path's to the bit (:class:`selectsearch.route.stats.CoriRouter`
computes the same table of per-(shard, term) beliefs and both sum a query's term beliefs left to
right, then divide by the number of query terms and add the size prior), so a query is routed to
the same shards whichever path runs (``tests/core/test_classic_routers.py``).
"""

from __future__ import annotations

__all__ = ["CORI_CLASS", "CORI_SOURCE"]

CORI_CLASS = "selectsearch.CoriScorer"

CORI_SOURCE = """package selectsearch;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.tokenattributes.CharTermAttribute;

/**
 * CORI scores of every shard for a batch of query texts: per query, the mean over its analysed
 * terms known to the vocabulary (repeats counted) of the term's belief in the shard (the default
 * belief where the shard lacks the term), summed left to right, plus the shard's size prior; the
 * prior alone for a query without a known term.
 */
public final class CoriScorer {
  private final Analyzer analyzer;
  private final HashMap<String, Integer> vocabulary;
  private final int[] indptr;  // term t's entries are [indptr[t], indptr[t + 1])
  private final int[] shards;  // shard of each entry
  private final double[] beliefs;  // belief of each entry
  private final double belief;
  private final double[] prior;

  /**
   * @param words the vocabulary, term i being the i-th of the UTF-8 words separated by newlines
   * @param indptr little-endian int32, one per term plus one (CSC column pointers)
   * @param shards little-endian int32 per entry (CSC row indices)
   * @param beliefs little-endian float64 per entry
   * @param belief the belief of a term in a shard without it
   * @param prior little-endian float64 per shard, added to every score
   */
  public CoriScorer(Analyzer analyzer, byte[] words, byte[] indptr, byte[] shards, byte[] beliefs, double belief,
                    byte[] prior) {
    this.analyzer = analyzer;
    this.indptr = ints(indptr);
    this.shards = ints(shards);
    this.beliefs = doubles(beliefs);
    this.belief = belief;
    this.prior = doubles(prior);
    String[] terms = new String(words, StandardCharsets.UTF_8).split("\\n", -1);
    int n = this.indptr.length - 1;
    if (terms.length < n || this.shards.length != this.beliefs.length || this.indptr[n] != this.shards.length) {
      throw new IllegalArgumentException("inconsistent CORI tables: " + terms.length + " words, " + n + " terms, "
                                         + this.shards.length + " shards, " + this.beliefs.length + " beliefs");
    }
    this.vocabulary = new HashMap<>(2 * n);
    for (int t = 0; t < n; t++) {
      vocabulary.put(terms[t], t);
    }
    for (int s : this.shards) {
      if (s < 0 || s >= this.prior.length) {
        throw new IllegalArgumentException("shard " + s + " outside the " + this.prior.length + " shards");
      }
    }
  }

  private static int[] ints(byte[] raw) {
    int[] out = new int[raw.length / 4];
    ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN).asIntBuffer().get(out);
    return out;
  }

  private static double[] doubles(byte[] raw) {
    double[] out = new double[raw.length / 8];
    ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN).asDoubleBuffer().get(out);
    return out;
  }

  public int numShards() {
    return prior.length;
  }

  /** Little-endian float64 scores of one text, one per shard (one query needs no String[] built). */
  public byte[] score(String text) throws IOException {
    return scores(new String[] {text});
  }

  /** Little-endian float64 scores, texts.length rows of numShards(), row i for texts[i]. */
  public byte[] scores(String[] texts) throws IOException {
    int k = prior.length;
    ByteBuffer out = ByteBuffer.allocate(8 * k * texts.length).order(ByteOrder.LITTLE_ENDIAN);
    double[] row = new double[k];
    double[] column = new double[k];
    for (String text : texts) {
      scoreInto(text, row, column);
      for (int i = 0; i < k; i++) {
        out.putDouble(row[i]);
      }
    }
    return out.array();
  }

  /** The scores of text into out (numShards() long); column is scratch space of the same length. */
  void scoreInto(String text, double[] out, double[] column) throws IOException {
    int k = prior.length;
    Arrays.fill(out, 0.0);
    int count = 0;
    try (TokenStream stream = analyzer.tokenStream(null, text)) {
      CharTermAttribute attr = stream.addAttribute(CharTermAttribute.class);
      stream.reset();
      while (stream.incrementToken()) {
        Integer t = vocabulary.get(attr.toString());
        if (t == null) {
          continue;
        }
        Arrays.fill(column, belief);
        for (int e = indptr[t]; e < indptr[t + 1]; e++) {
          column[shards[e]] = beliefs[e];
        }
        for (int i = 0; i < k; i++) {
          out[i] += column[i];
        }
        count++;
      }
      stream.end();
    }
    for (int i = 0; i < k; i++) {
      out[i] = count == 0 ? prior[i] : prior[i] + out[i] / count;
    }
  }

  /**
   * The best budget shards by scores, best first: score descending, then shard id ascending (the
   * order of selectsearch.ranking.rank_by_scores).
   */
  static int[] best(double[] scores, int budget) {
    int m = Math.max(0, Math.min(budget, scores.length));
    int[] out = new int[m];
    boolean[] taken = new boolean[scores.length];
    for (int j = 0; j < m; j++) {
      int top = -1;
      for (int i = 0; i < scores.length; i++) {  // ascending ids: a tie keeps the lower id
        if (!taken[i] && (top < 0 || scores[i] > scores[top])) {
          top = i;
        }
      }
      taken[top] = true;
      out[j] = top;
    }
    return out;
  }
}
"""
