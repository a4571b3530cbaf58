import { seededRandom } from '@fl/datasets';
import { UpdateRejectedError, WeightMap } from '../weights';
import { nativeFold, nativeFoldStatus } from './native-fold';
import { FoldEngine, WeightedSum } from './weighted-sum';

/** Odd sizes: a parameter smaller than a kernel step, one crossing a 64 Ki-value chunk, one not a multiple of 16. */
const LAYOUT: Record<string, number> = { bias: 3, big: 70_001, weight: 1_000 };
/** For many updates: the same odd sizes but one chunk (jest's typed arrays make JavaScript loops slow here). */
const SMALL: Record<string, number> = { bias: 3, weight: 4_099 };

function layout(fill: (name: string, i: number) => number, sizes = LAYOUT): WeightMap {
  const out: WeightMap = new Map();
  for (const [name, n] of Object.entries(sizes)) {
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = fill(name, i);
    out.set(name, { shape: [n], data });
  }
  return out;
}

function randomUpdates(count: number, seed: number, sizes = LAYOUT): { update: WeightMap; weight: number }[] {
  const rand = seededRandom(seed);
  return Array.from({ length: count }, () => {
    // Signs and magnitudes vary (1e-3 to 1e2), as trained weights do; a shared offset makes averages far from zero.
    const scale = 10 ** (rand() * 5 - 3);
    return { update: layout(() => (rand() - 0.3) * scale, sizes), weight: 1 + Math.floor(rand() * 5000) };
  });
}

/**
 * `npm test` builds the native fold where this machine can (a C++ compiler
 * and Node's headers; libs/aggregation/native/build.js): there it must be the
 * one used; elsewhere the WebAssembly kernels stand in, saying why.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { toolchain } = require('../../native/build.js') as { toolchain: () => { reason?: string } };
const buildable = toolchain().reason === undefined;

const bits = (m: Map<string, Float32Array>) => [...m].map(([name, d]) => [name, Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('base64')]);

describe('WeightedSum', () => {
  const engines: FoldEngine[] = buildable ? ['native', 'wasm', 'js'] : ['wasm', 'js'];

  it(`runs the native fold where npm test could build it (here: ${buildable ? 'yes' : toolchain().reason}), else WebAssembly SIMD for 16 Ki values and more`, () => {
    if (buildable) {
      expect(nativeFoldStatus().reason ?? 'available').toBe('available');
      expect(new WeightedSum(layout(() => 0)).engine).toBe('native');
      expect(new WeightedSum(new Map([['w', { shape: [10], data: new Float32Array(10) }]])).engine).toBe('native');
    } else {
      expect(nativeFoldStatus().available).toBe(false);
      expect(new WeightedSum(layout(() => 0)).engine).toBe('wasm');
      expect(new WeightedSum(new Map([['w', { shape: [10], data: new Float32Array(10) }]])).engine).toBe('js');
      expect(() => new WeightedSum(layout(() => 0), { engine: 'native' })).toThrow('the native fold is not available here');
    }
    expect(new WeightedSum(layout(() => 0), { engine: 'wasm' }).engine).toBe('wasm');
    expect(new WeightedSum(layout(() => 0), { engine: 'js' }).engine).toBe('js');
  });

  it('gives the same bits with every engine', () => {
    const updates = randomUpdates(4, 3);
    const [first, ...others] = engines.map((engine) => {
      const sum = new WeightedSum(layout(() => 0), { engine });
      for (const u of updates) sum.add(u.update, u.weight);
      return bits(sum.mean(updates.reduce((a, u) => a + u.weight, 0)));
    });
    for (const other of others) expect(other).toEqual(first);
  });

  it('divides to the same bits in float32 (totals up to 2^24) and float64 (beyond, or not whole)', () => {
    const updates = randomUpdates(2, 8, SMALL);
    const sums = engines.map((engine) => {
      const sum = new WeightedSum(layout(() => 0, SMALL), { engine });
      for (const u of updates) sum.add(u.update, u.weight);
      return sum;
    });
    for (const total of [3, 1234, 2 ** 24, 2 ** 24 + 1, 2 ** 31 + 7, 1234.5]) {
      const [first, ...others] = sums.map((sum) => bits(sum.mean(total)));
      for (const other of others) expect(other).toEqual(first);
    }
  });

  it.each(engines)('%s: a mean is fresh memory: later adds and means leave it as it was', (engine) => {
    const sum = new WeightedSum(layout(() => 0), { engine });
    sum.add(layout(() => 2), 1);
    const before = sum.mean(2);
    const copy = bits(before);
    sum.add(layout(() => 6), 1);
    expect(sum.mean(2).get('big')![5]).toBe(4);
    sum.dispose();
    const reuser = new WeightedSum(layout(() => 0), { engine });
    reuser.add(layout(() => 9), 1);
    reuser.mean(1);
    expect(bits(before)).toEqual(copy);
  });

  it('holds the mean of 100 updates within 1e-6 of a float64 reference, relative to sum n|w| / sum n', () => {
    const updates = randomUpdates(100, 11, SMALL);
    const total = updates.reduce((a, u) => a + u.weight, 0);
    const means = engines.map((engine) => {
      const sum = new WeightedSum(layout(() => 0, SMALL), { engine });
      for (const u of updates) sum.add(u.update, u.weight);
      return sum.mean(total);
    });
    expect(bits(means[0])).toEqual(bits(means[1]));
    let worst = 0;
    for (const [name, n] of Object.entries(SMALL)) {
      const exact = new Float64Array(n);
      const magnitude = new Float64Array(n);
      for (const u of updates) {
        const x = u.update.get(name)!.data;
        for (let i = 0; i < n; i++) {
          exact[i] += u.weight * x[i];
          magnitude[i] += u.weight * Math.abs(x[i]);
        }
      }
      const mean = means[0].get(name)!;
      for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(mean[i] - exact[i] / total) / (magnitude[i] / total));
    }
    expect(worst).toBeLessThan(1e-6);
    expect(worst).toBeGreaterThan(0); // float32 sums: not the float64 result, only close to it
  });

  it.each(engines)('%s: an update with a value that is not finite is refused wherever it is, and changes nothing', (engine) => {
    const good = randomUpdates(3, 5);
    const reference = new WeightedSum(layout(() => 0), { engine });
    for (const u of good) reference.add(u.update, u.weight);
    const expected = bits(reference.mean(1234));

    const sum = new WeightedSum(layout(() => 0), { engine });
    sum.add(good[0].update, good[0].weight);
    for (const [name, index, value] of [['big', 69_999, NaN], ['bias', 0, Infinity], ['weight', 999, -Infinity], ['big', 0, NaN]] as const) {
      const bad = layout((n, i) => (n === name && i === index ? value : 1));
      expect(() => sum.add(bad, 7)).toThrow(new UpdateRejectedError(`parameter '${name}' holds a non-finite value at index ${index}`, 'non-finite'));
    }
    sum.add(good[1].update, good[1].weight);
    sum.add(good[2].update, good[2].weight);
    expect(bits(sum.mean(1234))).toEqual(expected);
  });

  it.each(engines)('%s: refuses an update whose weighted values take the float32 sum beyond its range, and changes nothing', (engine) => {
    const sum = new WeightedSum(layout(() => 0), { engine });
    sum.add(layout(() => 1), 1);
    const huge = layout((name, i) => (name === 'weight' && i === 10 ? 3e38 : 1));
    expect(() => sum.add(huge, 10)).toThrow(/parameter 'weight' at index 10: 10 x 3\.0\d*e\+38 takes the float32 sum of the round beyond 3\.4e38/);
    expect([...sum.mean(1).values()].every((d) => d.every((v) => v === 1))).toBe(true);
  });

  it.each(engines.filter((e) => e !== 'js'))("%s: hands its memory to the next sum, which starts from nothing of the last one's", (engine) => {
    const first = new WeightedSum(layout(() => 0), { engine });
    first.add(layout(() => 5), 3);
    first.add(layout(() => 7), 1);
    first.dispose();
    expect(() => first.add(layout(() => 1), 1)).toThrow('disposed');
    const next = new WeightedSum(layout(() => 0), { engine });
    expect([...next.mean(1).values()].every((d) => d.every((v) => v === 0))).toBe(true);
    next.add(layout((_, i) => i % 3), 2);
    const mean = next.mean(2);
    expect(mean.get('big')!.every((v, i) => v === i % 3)).toBe(true);
    expect(Array.from(mean.get('bias')!)).toEqual([0, 1, 2]);
  });

  it('accepts large finite values that overflow only the running check of a chunk', () => {
    const big = layout(() => 2 ** 120); // 16 Ki of these per lane overflow the check, not the sums
    const means = engines.map((engine) => {
      const sum = new WeightedSum(layout(() => 0), { engine });
      sum.add(big, 1);
      sum.add(big, 2);
      return sum.mean(3);
    });
    for (const mean of means) {
      expect(bits(mean)).toEqual(bits(means[0]));
      expect(mean.get('big')!.every((v) => v === 2 ** 120)).toBe(true);
    }
  });
});

// Where the addon cannot be built there is none to test: the first test above checks the fallback there.
const describeWhereBuilt: jest.Describe = buildable ? describe : ((() => undefined) as unknown as jest.Describe);

describeWhereBuilt('the native fold', () => {
  const fold = () => {
    const f = nativeFold();
    if (!f) throw new Error(`the native fold is not built: ${nativeFoldStatus().reason}`);
    return f;
  };

  it('refuses arguments that would reach beyond its arrays, naming what is wrong', () => {
    const f = fold();
    const dst = new Float32Array(8);
    expect(() => f.fold(dst, null, 6, new Float32Array(3), 1)).toThrow('fold: offset + x.length lies beyond dst');
    expect(() => f.fold(dst, new Float32Array(4), 2, new Float32Array(3), 1)).toThrow('fold: offset + x.length lies beyond src');
    expect(() => f.fold(dst, null, -1, new Float32Array(3), 1)).toThrow('fold: offset must be a whole number >= 0');
    expect(() => f.fold(new Float64Array(8) as unknown as Float32Array, null, 0, new Float32Array(3), 1)).toThrow('fold: dst must be a Float32Array');
    expect(() => f.check(new Float32Array(4), 2, new Float32Array(3), 1)).toThrow('check: offset + x.length lies beyond src');
    expect(() => f.mean(dst, new Float32Array(7), 2)).toThrow('mean: dst and src differ in length');
    expect(() => f.mean(dst, new Float32Array(8), 0)).toThrow('mean: total must be a finite number > 0');
    expect(dst.every((v) => v === 0)).toBe(true);
  });

  it('folds at any alignment of its arrays: value by value up to a 16-byte boundary, then four lanes at a time', () => {
    const f = fold();
    const rand = seededRandom(21);
    for (const shift of [0, 1, 2, 3]) {
      for (const n of [1, 5, 16, 37, 301]) {
        const x = Float32Array.from({ length: n + shift }, () => rand() * 100 - 50).subarray(shift);
        const src = Float32Array.from({ length: n + 4 }, () => rand() * 1e6 - 5e5).subarray(3 - shift);
        const dst = new Float32Array(n + 2 + shift).subarray(shift);
        expect(f.fold(dst, src, 1, x, 7.25)).toBe(false);
        const want = Array.from(x, (v, i) => Math.fround(src[1 + i] + Math.fround(7.25 * v)));
        expect([shift, n, Array.from(dst.subarray(1, 1 + n))]).toEqual([shift, n, want]);
        expect([dst[0], dst[n + 1]]).toEqual([0, 0]);
      }
    }
  });

  it('checks an update without writing: the answer fold gives, exactly for values that are not finite', () => {
    const f = fold();
    const x = Float32Array.from({ length: 1001 }, (_, i) => i - 500);
    const src = new Float32Array(1001).fill(1);
    const copy = Float32Array.from(x);
    expect(f.check(src, 0, x, 3)).toBe(false);
    expect(f.check(null, 0, x, 3)).toBe(false);
    for (const at of [0, 7, 999, 1000]) {
      x[at] = NaN;
      expect([at, f.check(src, 0, x, 3)]).toEqual([at, true]);
      x[at] = copy[at];
    }
    x[500] = 3e38; // finite, but 3 x 3e38 is not
    expect(f.check(null, 0, x, 3)).toBe(true);
    expect(f.check(null, 0, x, 1)).toBe(false);
  });

  it('starts large arrays on a 2 MiB boundary of a buffer 2 MiB larger, small ones as plain arrays', () => {
    const f = fold();
    const big = new ArrayBuffer(9 << 20);
    const offset = f.hugePages(big);
    expect(offset % 16).toBe(0);
    expect(offset).toBeLessThan(2 << 20);
    expect(f.hugePages(new ArrayBuffer(1000))).toBe(0);
  });
});
