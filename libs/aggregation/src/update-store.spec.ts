import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seededRandom } from '@fl/datasets';
import { prefaultPages } from './update-store';
import { createStrategy } from './registry';
import { FitRes } from './strategy';
import { WeightMap } from './weights';

/** A model of 2 x 5000 + 37 values and eleven random updates, so blocks do not divide the model evenly. */
function round(seed: number): { current: WeightMap; results: FitRes[] } {
  const rand = seededRandom(seed);
  const make = (scale: number): WeightMap =>
    new Map([
      ['a', { shape: [2, 5000], data: Float32Array.from({ length: 10000 }, () => scale * (rand() - 0.5)) }],
      ['b', { shape: [37], data: Float32Array.from({ length: 37 }, () => scale * (rand() - 0.5)) }],
    ]);
  const results = Array.from({ length: 11 }, (_, k) => ({ node: `n${k}`, parameters: make(k < 9 ? 1 : 40), numExamples: 10 + k }));
  return { current: make(1), results };
}

describe('robust rules: spilled and in-memory paths', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'fl-agg-spec-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const cases: [string, Record<string, number>][] = [
    ['FedMedian', {}],
    ['FedTrimmedAvg', { beta: 0.2 }],
    ['Krum', { num_malicious_clients: 2, min_fit_clients: 7 }],
    ['Krum', { num_malicious_clients: 2, num_clients_to_keep: 4, min_fit_clients: 7 }],
    ['Bulyan', { num_malicious_clients: 2, min_fit_clients: 11 }],
  ];

  it.each(cases)('%s %j gives identical results in memory, all spilled and half spilled', (name, params) => {
    const { current, results } = round(42);
    const bytesPerUpdate = 10037 * 4;
    const run = (memoryBudgetBytes: number, blockBytes: number) =>
      createStrategy(name, params, { spill: { memoryBudgetBytes, blockBytes, directory: dir } }).aggregateFit(1, current, results);
    const memory = run(Infinity, 16 * 1024 ** 2);
    const spilled = run(0, 4096 * 11 * 4 + 44); // blocks of 4097 values: the last block is short
    const mixed = run(5 * bytesPerUpdate, 1); // the 1024-value floor on block size
    for (const other of [spilled, mixed]) {
      expect(other.selectedNodes).toEqual(memory.selectedNodes);
      for (const [k, t] of memory.parameters) expect(Buffer.from(other.parameters.get(k)!.data.buffer).equals(Buffer.from(t.data.buffer))).toBe(true);
    }
    expect(readdirSync(dir)).toEqual([]);
  });

  it('spills beyond the budget and removes its files when the round is abandoned', () => {
    const { current, results } = round(1);
    const agg = createStrategy('FedMedian', {}, { spill: { memoryBudgetBytes: 3 * 10037 * 4, directory: dir } }).beginFit(1, current);
    for (const r of results) agg.add(r);
    const [spillDir] = readdirSync(dir);
    expect(readdirSync(join(dir, spillDir))).toHaveLength(results.length - 3);
    agg.dispose();
    expect(existsSync(join(dir, spillDir))).toBe(false);
    expect(() => agg.add(results[0])).toThrow('finished');
  });

  it('keeps the median away from two hostile updates of eleven', () => {
    const { current, results } = round(3);
    const out = createStrategy('FedMedian', {}, { spill: { memoryBudgetBytes: 0, directory: dir } }).aggregateFit(1, current, results);
    const a = out.parameters.get('a')!.data;
    expect(Math.max(...a.map(Math.abs))).toBeLessThan(0.5);
  });
});

describe('prefaultPages', () => {
  it('writes one value per 4 KiB page back unchanged, pausing after each slice, and stops once the arrays are no longer live', () => {
    const a = Float64Array.from({ length: 3000 }, (_, i) => (i % 7 === 0 ? -0 : i / 3));
    const b = Float32Array.from({ length: 5000 }, (_, i) => i * 1.5);
    const before = [Buffer.from(a.buffer).toString('hex'), Buffer.from(b.buffer).toString('hex')];
    const steps = prefaultPages([a, b], 1000);
    let pauses = 0;
    while (!steps.next().done) pauses++;
    expect(pauses).toBe(3 + 5);
    expect([Buffer.from(a.buffer).toString('hex'), Buffer.from(b.buffer).toString('hex')]).toEqual(before);

    let live = true;
    const stopped = prefaultPages([a, b], 1000, () => live);
    stopped.next();
    live = false;
    expect(stopped.next().done).toBe(true);
  });

  it('writes once in every 4 KiB page (a write is what maps a fresh page)', () => {
    const written = (a: Float64Array | Float32Array) => {
      const at: number[] = [];
      const spy = new Proxy(a, {
        get: (t, k) => (k === 'length' ? t.length : Reflect.get(t, k)),
        set: (t, k, v) => (at.push(Number(k)), Reflect.set(t, k, v)),
      });
      for (const _ of prefaultPages([spy], 1500));
      return at;
    };
    expect(written(new Float64Array(2000))).toEqual([0, 512, 1024, 1536]);
    expect(written(new Float32Array(3000))).toEqual([0, 1024, 2048]);
  });
});
