import { KeptWeights } from './kept-weights';

describe('KeptWeights', () => {
  const sha = (c: string) => c.repeat(64);
  const MiB = 1024 * 1024;

  it('keeps one set of weights per task, given up once, and only for the weights named', () => {
    const kept = new KeptWeights();
    const w = Buffer.from([1, 2, 3]);
    expect(kept.keep(1, sha('a'), w)).toBe(true);
    expect(kept.take(1, sha('b'))).toBeUndefined();
    expect(kept.take(2, sha('a'))).toBeUndefined();
    expect(kept.take(1, sha('a'))).toBe(w);
    expect(kept.take(1, sha('a'))).toBeUndefined();
    // A newer evaluation of the task replaces the older weights.
    kept.keep(1, sha('a'), Buffer.from([1]));
    kept.keep(1, sha('c'), Buffer.from([1, 2]));
    expect(kept.keptBytes).toBe(2);
    expect(kept.take(1, sha('a'))).toBeUndefined();
    expect(kept.take(1, sha('c'))).toEqual(Buffer.from([1, 2]));
  });

  it('at its bounds keeps nothing new (not confirmed, so the weights come attached) unless stale entries make room', () => {
    const kept = new KeptWeights();
    let now = 0;
    kept.now = () => now;
    const big = Buffer.alloc(KeptWeights.MAX_BYTES / 2);
    expect(kept.keep(1, sha('a'), big)).toBe(true);
    now = 1_000;
    expect(kept.keep(2, sha('b'), big)).toBe(true);
    now = KeptWeights.STALE_MS;
    expect(kept.keep(3, sha('c'), Buffer.alloc(MiB))).toBe(false);
    // Task 1's weights are older than STALE_MS now: they make room; task 2's stay.
    now = KeptWeights.STALE_MS + 1;
    expect(kept.keep(3, sha('c'), Buffer.alloc(MiB))).toBe(true);
    expect(kept.take(1, sha('a'))).toBeUndefined();
    expect(kept.take(2, sha('b'))?.length).toBe(big.length);
    expect(kept.keptBytes).toBe(MiB);

    const many = new KeptWeights();
    for (let task = 0; task < KeptWeights.MAX_TASKS; task++) expect(many.keep(task, sha('a'), Buffer.alloc(1))).toBe(true);
    expect(many.keep(KeptWeights.MAX_TASKS, sha('a'), Buffer.alloc(1))).toBe(false);
  });
});
