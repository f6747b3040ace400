/*
 * The knn router's similarities of one query to N logged queries of d dimensions (float32), in Java:
 * what routing the fused router inside the JVM would have to compute per query (issue 19).
 * Two layouts: rows (one dot product per logged query, as numpy's kb @ q reads them) and columns
 * (q[i] * column i added to all N sums: a loop without a reduction, which C2 can vectorise).
 * "warm": the same query again and again; "cold": 16 MB of other memory touched between two queries
 * (a search in between evicts the knowledge base), with the touching itself timed apart and subtracted.
 *
 * Run (eval/results/routing/jvm-knn.md): javac -d /tmp/knn KnnDots.java && JAVA -cp /tmp/knn KnnDots 807 384
 */
public final class KnnDots {
  static void rows(float[] q, float[] kb, float[] s, int n, int d) {
    for (int j = 0; j < n; j++) {
      float x0 = 0, x1 = 0, x2 = 0, x3 = 0;
      int o = j * d;
      for (int i = 0; i < d; i += 4) {
        x0 += q[i] * kb[o + i];
        x1 += q[i + 1] * kb[o + i + 1];
        x2 += q[i + 2] * kb[o + i + 2];
        x3 += q[i + 3] * kb[o + i + 3];
      }
      s[j] = (x0 + x1) + (x2 + x3);
    }
  }

  static void columns(float[] q, float[] kbT, float[] s, int n, int d) {
    java.util.Arrays.fill(s, 0f);
    for (int i = 0; i < d; i++) {
      float qi = q[i];
      int o = i * n;
      for (int j = 0; j < n; j++) {
        s[j] += qi * kbT[o + j];
      }
    }
  }

  static long touch(int[] other) {
    long sum = 0;
    for (int z = 0; z < other.length; z += 16) {
      other[z] += 1;
      sum += other[z];
    }
    return sum;
  }

  public static void main(String[] args) {
    int n = Integer.parseInt(args[0]), d = Integer.parseInt(args[1]);
    if (d % 4 != 0) {
      throw new IllegalArgumentException("d must be a multiple of 4");
    }
    java.util.Random r = new java.util.Random(1);
    float[] kb = new float[n * d], kbT = new float[n * d], q = new float[d], s = new float[n];
    for (int i = 0; i < n * d; i++) {
      kb[i] = r.nextFloat() - 0.5f;
    }
    for (int j = 0; j < n; j++) {
      for (int i = 0; i < d; i++) {
        kbT[i * n + j] = kb[j * d + i];
      }
    }
    for (int i = 0; i < d; i++) {
      q[i] = r.nextFloat() - 0.5f;
    }
    int[] other = new int[4 << 20];  // 16 MB
    long sink = 0;
    int reps = 2000;
    for (int round = 0; round < 6; round++) {  // the first rounds compile; the last is reported
      long t0 = System.nanoTime();
      for (int it = 0; it < reps; it++) { rows(q, kb, s, n, d); sink += (long) s[it % n]; }
      long t1 = System.nanoTime();
      for (int it = 0; it < reps; it++) { columns(q, kbT, s, n, d); sink += (long) s[it % n]; }
      long t2 = System.nanoTime();
      for (int it = 0; it < 200; it++) { sink += touch(other); rows(q, kb, s, n, d); }
      long t3 = System.nanoTime();
      for (int it = 0; it < 200; it++) { sink += touch(other); columns(q, kbT, s, n, d); }
      long t4 = System.nanoTime();
      for (int it = 0; it < 200; it++) { sink += touch(other); }
      long t5 = System.nanoTime();
      double touchUs = (t5 - t4) / 200e3;
      System.out.printf("round %d: rows warm %.1f us, columns warm %.1f us, rows cold %.1f us, columns cold %.1f us%n",
                        round, (t1 - t0) / (reps * 1e3), (t2 - t1) / (reps * 1e3), (t3 - t2) / 200e3 - touchUs,
                        (t4 - t3) / 200e3 - touchUs);
    }
    System.out.println("(checksum " + sink + ")");
  }
}
