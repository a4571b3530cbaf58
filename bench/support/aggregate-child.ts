import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStrategy, FitRes, nativeFoldStatus, WeightMap } from '@fl/aggregation';

/**
 * One configuration of `npm run bench -- aggregate`, in a process of its own
 * (forked by aggregate.bench.ts with --expose-gc), so that the peak RSS it
 * reports belongs to this configuration alone. Sends one ChildReport.
 *
 * The strategy and a memory copy of the same bytes (every update copied with
 * TypedArray.set into one target) are timed in turns, the order alternating,
 * so both see the same machine; the share of the copy is taken per turn, then
 * the median. Only `DISTINCT_UPDATES` update arrays exist, cycled: N = 100
 * does not need 100 models in memory. Each is larger than a core's L2 cache;
 * at a million values the four together (16 MB) are about a shared L3 cache,
 * so fold and copy alike run partly from L3 there, and from memory at ten
 * million.
 */
export const DISTINCT_UPDATES = 4;

export interface ChildConfig {
  label: string;
  strategy: string;
  parameters: Record<string, number>;
  /** Robust rules: a memory budget of 0 puts every update in a temporary file. */
  spill?: boolean;
  /** Extra environment of the process (GLIBC_TUNABLES, FL_NATIVE_FOLD). */
  env?: Record<string, string>;
  n: number;
  p: number;
  /** Turns of each (strategy, copy), the order alternating: at least `turns`, and more up to `seconds` of turns (200 at most). */
  turns: number;
  seconds: number;
}

const MAX_TURNS = 200;

export interface ChildReport {
  config: ChildConfig;
  /** Per turn, milliseconds: the whole round (beginFit, N adds, finish), and the adds alone. */
  strategyMs: number[];
  addsMs: number[];
  copyMs: number[];
  /** Per turn: copy time / strategy time, i.e. the strategy's throughput as a share of the copy's. */
  shareOfCopy: number[];
  /** Process RSS before any model-sized array existed (Node itself, the code). */
  rssStartBytes: number;
  /** Once the benchmark's inputs exist: global weights, the distinct updates, the copy's target. */
  rssInputsBytes: number;
  /**
   * Peak RSS over the warm-up and every turn above rssInputsBytes: what the
   * strategy costs the process, including memory it keeps from one round for
   * the next (a full GC runs between rounds, so earlier rounds' garbage is not counted).
   */
  peakAboveInputsBytes: number;
  /** 'VmHWM' when the kernel's high-water mark could be reset once the inputs existed; 'sampled' (after every add) otherwise. */
  peakMethod: 'VmHWM' | 'sampled';
  /** The linear strategies' fold in this process: the native addon, or the WebAssembly kernels where it is off or not built. */
  fold: 'native' | 'WebAssembly';
}

async function main(config: ChildConfig): Promise<ChildReport> {
  const { n, p } = config;
  const rssStartBytes = status('VmRSS');
  const current: WeightMap = new Map([['w', { shape: [p], data: pattern(p, 99) }]]);
  const updates: FitRes[] = Array.from({ length: DISTINCT_UPDATES }, (_, k) => ({
    node: `site-${k}`,
    parameters: new Map([['w', { shape: [p], data: pattern(p, k) }]]),
    numExamples: 100 + k,
  }));
  const target = new Float32Array(p).fill(1); // touched, so its pages count before the first round
  const dir = config.spill ? mkdtempSync(join(tmpdir(), 'fl-bench-aggregate-')) : undefined;
  const options = dir ? { spill: { memoryBudgetBytes: 0, directory: dir } } : {};

  const copy = (count: number): number => {
    const t0 = process.hrtime.bigint();
    for (let k = 0; k < count; k++) target.set(updates[k % DISTINCT_UPDATES].parameters.get('w')!.data);
    return Number(process.hrtime.bigint() - t0) / 1e6;
  };
  const round = (count: number, sample: boolean): { ms: number; addsMs: number; sampledPeak: number } => {
    let sampledPeak = 0;
    let addsNs = 0n;
    const t0 = process.hrtime.bigint();
    const agg = createStrategy(config.strategy, config.parameters, options).beginFit(1, current);
    for (let k = 0; k < count; k++) {
      const a = process.hrtime.bigint();
      agg.add(updates[k % DISTINCT_UPDATES]);
      addsNs += process.hrtime.bigint() - a;
      if (sample) sampledPeak = Math.max(sampledPeak, status('VmRSS'));
    }
    const out = agg.finish().parameters.get('w')!.data;
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (sample) sampledPeak = Math.max(sampledPeak, status('VmRSS'));
    if (!Number.isFinite(out[0]) || !Number.isFinite(out[p - 1])) throw new Error(`${config.label} produced a non-finite value`);
    return { ms, addsMs: Number(addsNs) / 1e6, sampledPeak };
  };

  try {
    await settle();
    const rssInputsBytes = status('VmRSS');
    const canReset = resetPeak();
    let sampledPeak = rssInputsBytes;
    // Warm-up, not measured: compiled code, WebAssembly tier-up, touched pages.
    copy(Math.min(n, DISTINCT_UPDATES));
    sampledPeak = Math.max(sampledPeak, round(Math.min(n, DISTINCT_UPDATES), !canReset).sampledPeak);
    const report: ChildReport = {
      config,
      strategyMs: [],
      addsMs: [],
      copyMs: [],
      shareOfCopy: [],
      rssStartBytes,
      rssInputsBytes,
      peakAboveInputsBytes: 0,
      peakMethod: canReset ? 'VmHWM' : 'sampled',
      fold: nativeFoldStatus().available ? 'native' : 'WebAssembly',
    };
    const start = process.hrtime.bigint();
    const elapsed = () => Number(process.hrtime.bigint() - start) / 1e9;
    for (let r = 0; r < MAX_TURNS && (r < config.turns || elapsed() < config.seconds); r++) {
      // What the last round left (its result) goes first; a coordinator's next round finds the same after V8's own collections.
      await settle();
      const copyFirst = r % 2 === 0;
      const copyMs = copyFirst ? copy(n) : NaN;
      const turn = round(n, !canReset);
      const c = copyFirst ? copyMs : copy(n);
      sampledPeak = Math.max(sampledPeak, turn.sampledPeak);
      report.strategyMs.push(turn.ms);
      report.addsMs.push(turn.addsMs);
      report.copyMs.push(c);
      report.shareOfCopy.push(c / turn.ms);
    }
    report.peakAboveInputsBytes = (canReset ? status('VmHWM') : sampledPeak) - rssInputsBytes;
    return report;
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

/** Values in [-0.5, 0.5), different per update. */
function pattern(p: number, k: number): Float32Array {
  const data = new Float32Array(p);
  for (let i = 0; i < p; i++) data[i] = ((i * 7 + k * 13) % 101) / 101 - 0.5;
  return data;
}

/** A field of /proc/self/status, in bytes. */
function status(field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  if (!m) throw new Error(`no ${field} in /proc/self/status`);
  return Number(m[1]) * 1024;
}

/** Resets VmHWM to the current RSS (Linux >= 4.0); false where that is not allowed. */
function resetPeak(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/** A full collection, then a moment for V8 to hand freed array buffers and WebAssembly memories back. */
async function settle(): Promise<void> {
  (globalThis as { gc?: () => void }).gc?.();
  await new Promise((resolve) => setTimeout(resolve, 20));
}

if (require.main === module) {
  main(JSON.parse(process.argv[2]) as ChildConfig).then(
    (report) => process.send!(report, () => process.exit(0)),
    (err) => {
      console.error(err instanceof Error ? (err.stack ?? err.message) : err);
      process.exit(1);
    },
  );
}
