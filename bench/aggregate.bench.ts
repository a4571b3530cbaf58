import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStrategy, FitRes, WeightMap } from '@fl/aggregation';
import { writeResult } from './support/results';
import { median } from './support/stats';

/**
 * FedAvg over N updates of P float32 values through the strategy interface
 * (validation + streaming fold + result), beside two baselines measured in
 * the same run on the same arrays: a plain loop summing every value (read
 * speed) and a memory copy of every update (TypedArray.set). Throughput is
 * GB/s of update input (N * P * 4 bytes). Only a few distinct update arrays
 * exist (cycled), so N = 100 does not need 100 models in memory; each is far
 * larger than the caches, so every pass still streams from memory.
 * Also the robust rules (median, trimmed mean) at one size, in memory and
 * spilled to disk. Peak RSS is sampled after every update.
 */
const DISTINCT = 4;
const GB = 1e9;

export interface AggregateBenchOptions {
  /** Largest model size; `--max-values 1e6` skips the 1e7 runs. */
  maxValues: number;
  repeats: number;
}

interface Row {
  case: string;
  n: number;
  p: number;
  ms: number;
  nsPerValue: number;
  gbps: number;
  sumLoopGbps: number;
  copyGbps: number;
  ofSumLoop: number;
  ofCopy: number;
  peakRssMb: number;
  modelMb: number;
}

export async function aggregateBench(opts: AggregateBenchOptions): Promise<void> {
  const rows: Row[] = [];
  const sizes = [1e6, 1e7].filter((p) => p <= opts.maxValues);
  console.log(`aggregate bench: FedAvg over N in {10, 100} updates of P in {${sizes.join(', ')}} float32 values, ${opts.repeats} repeats (median); ${DISTINCT} distinct update arrays cycled`);
  for (const p of sizes) {
    const updates = makeUpdates(p);
    const current: WeightMap = new Map([['w', { shape: [p], data: new Float32Array(p) }]]);
    for (const n of [10, 100]) {
      const results = Array.from({ length: n }, (_, k) => updates[k % DISTINCT]);
      const fedavg = timeRepeats(opts.repeats, () => runStrategy('FedAvg', {}, current, results));
      const sumLoop = timeRepeats(opts.repeats, () => ({ ms: sumAll(results), peakRss: 0 }));
      const copy = timeRepeats(opts.repeats, () => ({ ms: copyAll(results, p), peakRss: 0 }));
      rows.push(row('FedAvg', n, p, fedavg, sumLoop.ms, copy.ms));
    }
  }

  // Robust rules at one size, in memory and spilled (memory budget 0).
  const p = 1e6;
  const n = 10;
  const updates = makeUpdates(p);
  const current: WeightMap = new Map([['w', { shape: [p], data: new Float32Array(p) }]]);
  const results = Array.from({ length: n }, (_, k) => updates[k % DISTINCT]);
  const sumMs = timeRepeats(opts.repeats, () => ({ ms: sumAll(results), peakRss: 0 })).ms;
  const copyMs = timeRepeats(opts.repeats, () => ({ ms: copyAll(results, p), peakRss: 0 })).ms;
  const dir = mkdtempSync(join(tmpdir(), 'fl-bench-aggregate-'));
  try {
    for (const [label, name, params] of [
      ['FedMedian', 'FedMedian', {}],
      ['FedTrimmedAvg beta 0.2', 'FedTrimmedAvg', { beta: 0.2 }],
    ] as const) {
      const mem = timeRepeats(opts.repeats, () => runStrategy(name, params, current, results));
      rows.push(row(`${label}, in memory`, n, p, mem, sumMs, copyMs));
      const spilled = timeRepeats(opts.repeats, () => runStrategy(name, params, current, results, { memoryBudgetBytes: 0, directory: dir }));
      rows.push(row(`${label}, spilled to disk`, n, p, spilled, sumMs, copyMs));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  console.log('\nGB/s of update input (N x P x 4 bytes); "of copy" = FedAvg throughput / memory-copy throughput (goal >= 0.5)');
  console.table(
    Object.fromEntries(
      rows.map((r) => [
        `${r.case} N=${r.n} P=${r.p.toExponential(0)}`,
        { 'ms': r.ms, 'ns/value': r.nsPerValue, 'GB/s': r.gbps, 'sum loop GB/s': r.sumLoopGbps, 'copy GB/s': r.copyGbps, 'of sum loop': r.ofSumLoop, 'of copy': r.ofCopy, 'peak RSS MB': r.peakRssMb, 'model MB': r.modelMb },
      ]),
    ),
  );
  console.log('peak RSS is the process\'s, sampled after each update: it includes the benchmark\'s own distinct update arrays (4 x model) and the baselines\' buffers');
  console.log(`written ${writeResult('aggregate', { distinctUpdateArrays: DISTINCT, repeats: opts.repeats, rows })}`);
}

function makeUpdates(p: number): FitRes[] {
  return Array.from({ length: DISTINCT }, (_, k) => {
    const data = new Float32Array(p);
    for (let i = 0; i < p; i++) data[i] = ((i * 7 + k * 13) % 101) / 101 - 0.5;
    return { node: `site-${k}`, parameters: new Map([['w', { shape: [p], data }]]), numExamples: 100 + k };
  });
}

function runStrategy(name: string, params: Record<string, number>, current: WeightMap, results: FitRes[], spill?: { memoryBudgetBytes: number; directory: string }): { ms: number; peakRss: number } {
  let peakRss = process.memoryUsage.rss();
  const t0 = process.hrtime.bigint();
  const agg = createStrategy(name, params, spill ? { spill } : {}).beginFit(1, current);
  for (const r of results) {
    agg.add(r);
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
  }
  const out = agg.finish();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
  if (!Number.isFinite(out.parameters.get('w')!.data[0])) throw new Error(`${name} produced a non-finite value`);
  return { ms, peakRss };
}

let sink = 0;

/** Read-speed baseline: a plain loop summing every value of every update. */
function sumAll(results: FitRes[]): number {
  const t0 = process.hrtime.bigint();
  let s = 0;
  for (const r of results) {
    const d = r.parameters.get('w')!.data;
    for (let i = 0; i < d.length; i++) s += d[i];
  }
  sink += s;
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Memory-copy baseline: every update copied into one target with TypedArray.set. */
function copyAll(results: FitRes[], p: number): number {
  const target = new Float32Array(p);
  const t0 = process.hrtime.bigint();
  for (const r of results) target.set(r.parameters.get('w')!.data);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  sink += target[p - 1];
  return ms;
}

function timeRepeats(repeats: number, run: () => { ms: number; peakRss: number }): { ms: number; peakRss: number } {
  run(); // warm-up: compiled code and touched pages, not measured
  const runs = Array.from({ length: Math.max(1, repeats) }, run);
  return { ms: median(runs.map((r) => r.ms)), peakRss: Math.max(...runs.map((r) => r.peakRss)) };
}

function row(label: string, n: number, p: number, t: { ms: number; peakRss: number }, sumMs: number, copyMs: number): Row {
  const bytes = n * p * 4;
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  const gbps = bytes / GB / (t.ms / 1000);
  const sumLoopGbps = bytes / GB / (sumMs / 1000);
  const copyGbps = bytes / GB / (copyMs / 1000);
  return {
    case: label,
    n,
    p,
    ms: Math.round(t.ms),
    nsPerValue: r3((t.ms * 1e6) / (n * p)),
    gbps: r3(gbps),
    sumLoopGbps: r3(sumLoopGbps),
    copyGbps: r3(copyGbps),
    ofSumLoop: r3(gbps / sumLoopGbps),
    ofCopy: r3(gbps / copyGbps),
    peakRssMb: Math.round(t.peakRss / 2 ** 20),
    modelMb: Math.round((p * 4) / 2 ** 20),
  };
}
