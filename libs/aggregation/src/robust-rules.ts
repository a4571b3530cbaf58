import { UpdateStore } from './update-store';

/**
 * Coordinate-wise and distance-based building blocks of the robust rules,
 * all working block by block on an UpdateStore. Per coordinate the values of
 * all updates are gathered into a float64 scratch array and sorted; small
 * counts (the usual case: a few dozen sites) use insertion sort, which beats
 * the generic sort there.
 */

export function sortSmall(a: Float64Array, n: number): void {
  if (n > 48) {
    a.subarray(0, n).sort();
    return;
  }
  for (let i = 1; i < n; i++) {
    const x = a[i];
    let j = i - 1;
    while (j >= 0 && a[j] > x) {
      a[j + 1] = a[j];
      j--;
    }
    a[j + 1] = x;
  }
}

/** Median of the first n sorted values; the mean of the two middle ones for even n. */
export function sortedMedian(a: Float64Array, n: number): number {
  const h = n >> 1;
  return n % 2 === 1 ? a[h] : (a[h - 1] + a[h]) / 2;
}

/** Coordinate-wise median over the updates `ids` (default all). */
export function* coordinateMedian(store: UpdateStore, blockValues: number, ids?: readonly number[]): Generator<void, Float32Array> {
  const out = new Float32Array(store.layout.size);
  const n = ids?.length ?? store.count;
  const v = new Float64Array(n);
  yield* store.blocks(
    blockValues,
    (start, length, rows) => {
      for (let j = 0; j < length; j++) {
        for (let k = 0; k < n; k++) v[k] = rows[k][j];
        sortSmall(v, n);
        out[start + j] = sortedMedian(v, n);
      }
    },
    ids,
  );
  return out;
}

/** Coordinate-wise mean after dropping floor(beta * n) values at each end. */
export function* coordinateTrimmedMean(store: UpdateStore, blockValues: number, beta: number): Generator<void, Float32Array> {
  const n = store.count;
  const cut = Math.floor(beta * n);
  if (2 * cut >= n) throw new Error(`trimmed mean: beta ${beta} cuts every one of the ${n} updates`);
  const out = new Float32Array(store.layout.size);
  const v = new Float64Array(n);
  const kept = n - 2 * cut;
  yield* store.blocks(blockValues, (start, length, rows) => {
    for (let j = 0; j < length; j++) {
      for (let k = 0; k < n; k++) v[k] = rows[k][j];
      sortSmall(v, n);
      let s = 0;
      for (let k = cut; k < n - cut; k++) s += v[k];
      out[start + j] = s / kept;
    }
  });
  return out;
}

/** Squared L2 distances between all pairs of updates, n x n row-major. */
export function* pairwiseSquaredDistances(store: UpdateStore, blockValues: number): Generator<void, Float64Array> {
  const n = store.count;
  const d = new Float64Array(n * n);
  yield* store.blocks(blockValues, (_start, length, rows) => {
    for (let a = 0; a < n; a++) {
      const x = rows[a];
      for (let b = a + 1; b < n; b++) {
        const y = rows[b];
        let s = 0;
        for (let j = 0; j < length; j++) {
          const e = x[j] - y[j];
          s += e * e;
        }
        d[a * n + b] += s;
      }
    }
  });
  for (let a = 0; a < n; a++) for (let b = a + 1; b < n; b++) d[b * n + a] = d[a * n + b];
  return d;
}

/**
 * Krum scores (Blanchard et al. 2017) among the updates `ids`: for each, the
 * sum of its squared distances to its m - f - 2 nearest others (at least 1,
 * at most m - 1), m = ids.length.
 */
export function krumScores(dist: Float64Array, n: number, ids: readonly number[], f: number): number[] {
  const m = ids.length;
  const closest = Math.min(m - 1, Math.max(1, m - f - 2));
  return ids.map((i) => {
    const others = ids.filter((j) => j !== i).map((j) => dist[i * n + j]);
    others.sort((a, b) => a - b);
    let s = 0;
    for (let k = 0; k < closest; k++) s += others[k];
    return s;
  });
}

/** The `count` ids with the lowest scores, lowest first; ties go to the earlier arrival. */
export function lowestScores(ids: readonly number[], scores: readonly number[], count: number): number[] {
  return ids
    .map((id, k) => ({ id, s: scores[k] }))
    .sort((a, b) => a.s - b.s || a.id - b.id)
    .slice(0, count)
    .map((e) => e.id);
}

/** sum_k w_k x_k / sum_k w_k over the updates `ids`. */
export function* weightedAverage(store: UpdateStore, blockValues: number, ids: readonly number[], weights: readonly number[]): Generator<void, Float32Array> {
  const out = new Float32Array(store.layout.size);
  const total = weights.reduce((a, b) => a + b, 0);
  const acc = new Float64Array(Math.min(store.layout.size, Math.max(1, blockValues)));
  yield* store.blocks(
    blockValues,
    (start, length, rows) => {
      acc.fill(0, 0, length);
      for (let r = 0; r < rows.length; r++) {
        const x = rows[r];
        const w = weights[r];
        for (let j = 0; j < length; j++) acc[j] += w * x[j];
      }
      for (let j = 0; j < length; j++) out[start + j] = acc[j] / total;
    },
    ids,
  );
  return out;
}

/**
 * Bulyan's second step (El Mhamdi et al. 2018): per coordinate, the mean of
 * the `beta` values of the updates `ids` closest to their median. The closest
 * values form a run around the median in sorted order; it is grown one value
 * at a time towards the nearer side, the lower side on a tie.
 */
export function* coordinateMeanAroundMedian(store: UpdateStore, blockValues: number, ids: readonly number[], beta: number): Generator<void, Float32Array> {
  const n = ids.length;
  if (!(beta >= 1 && beta <= n)) throw new Error(`Bulyan: cannot average ${beta} of ${n} values`);
  const out = new Float32Array(store.layout.size);
  const v = new Float64Array(n);
  yield* store.blocks(
    blockValues,
    (start, length, rows) => {
      for (let j = 0; j < length; j++) {
        for (let k = 0; k < n; k++) v[k] = rows[k][j];
        sortSmall(v, n);
        const med = sortedMedian(v, n);
        // Start from the value nearest the median, then extend the run [lo, hi].
        let lo = n >> 1;
        if (n % 2 === 0 && med - v[lo - 1] <= v[lo] - med) lo--;
        let hi = lo;
        let s = v[lo];
        for (let c = 1; c < beta; c++) {
          const left = lo > 0 ? med - v[lo - 1] : Infinity;
          const right = hi < n - 1 ? v[hi + 1] - med : Infinity;
          if (left <= right) s += v[--lo];
          else s += v[++hi];
        }
        out[start + j] = s / beta;
      }
    },
    ids,
  );
  return out;
}
