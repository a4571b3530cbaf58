import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { withCleanup } from './support/cleanup';
import { writeResult } from './support/results';
import { r2, summarize } from './support/stats';
import { nowMs } from './support/tapped-bus';

/**
 * The bare-machine demo (in-memory bus, embedded PostgreSQL: AMQP_URL and
 * DATABASE_URL removed from its environment) as a user runs it, timed from
 * spawn to exit, `runs` times. Baseline: the same node starting and exiting
 * with nothing to do. Times on the demo's own clock (which starts once its
 * modules are loaded) are parsed from its output.
 */
const DEMO = join(__dirname, '..', 'apps', 'demo', 'src', 'main.js');

interface DemoRun {
  exitCode: number | null;
  /** spawn -> exit, parent's clock */
  totalMs: number;
  /** spawn -> the 'task: ... submitted' line reached the parent */
  submittedLineMs: number | null;
  /** 'at X.Xs' in that line: the demo's clock */
  submittedAtS: number | null;
  /** 'success after Y s of training (Z s since start-up)' */
  trainingS: number | null;
  successSinceStartS: number | null;
  /** the demo's own round table */
  roundDurationsMs: number[];
  /** the success line -> exit (stopping the apps) */
  shutdownMs: number | null;
  /** spawn -> each start-up line of the demo reached the parent (last one of each kind) */
  milestonesMs: Record<string, number>;
}

/** The demo's start-up lines, in order; 'broker:' comes once the embedded PostgreSQL is up. */
const MILESTONES = ['broker:', 'gateway:', 'coordinator:', 'edge worker:', 'model:', 'task:'];

export async function demoBench(opts: { runs: number }): Promise<void> {
  const { runs, baseline } = await withCleanup(async (cleanup) => {
    const dir = mkdtempSync(join(tmpdir(), 'fl-bench-demo-'));
    cleanup.add(`removing ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
    console.log(`demo bench: ${opts.runs} runs of node ${DEMO} (PORT=0, in-memory bus, embedded PostgreSQL)`);
    const baseline: number[] = [];
    for (let i = 0; i < opts.runs; i++) baseline.push((await runNode(['-e', '0'], {})).totalMs);
    const runs: DemoRun[] = [];
    for (let i = 0; i < opts.runs; i++) {
      const r = await runNode([DEMO], { PORT: '0', DEMO_DIR: join(dir, `run-${i + 1}`) });
      if (r.exitCode !== 0) throw new Error(`demo run ${i + 1} exited with ${r.exitCode}:\n${r.lines.map((l) => l.text).join('\n')}`);
      runs.push(parse(r));
      console.log(`  run ${i + 1}: ${(r.totalMs / 1000).toFixed(2)} s`);
    }
    return { runs, baseline };
  });
  const med = (f: (r: DemoRun) => number | null) => summarize(runs.map(f).filter((x): x is number => x !== null)).median;
  console.log(`\ndemo, median of ${runs.length} runs (ms)`);
  console.table({
    'node -e 0 (baseline)': { 'spawn -> exit': summarize(baseline).median },
    demo: {
      'spawn -> exit': med((r) => r.totalMs),
      'spawn -> task submitted': med((r) => r.submittedLineMs),
      "submitted 'at' (demo clock)": med((r) => (r.submittedAtS === null ? null : r.submittedAtS * 1000)),
      'training (demo)': med((r) => (r.trainingS === null ? null : r.trainingS * 1000)),
      'sum of round durations': med((r) => r.roundDurationsMs.reduce((a, b) => a + b, 0)),
      'success -> exit': med((r) => r.shutdownMs),
    },
  });
  console.log('start-up: spawn -> line printed, median ms');
  console.table(Object.fromEntries(MILESTONES.map((m) => [m, { 'spawn -> line': med((r) => r.milestonesMs[m] ?? null) }])));
  console.log(`written ${writeResult('demo', { runs, baselineNodeStartMs: baseline.map(r2), medianTotalMs: med((r) => r.totalMs), medianStartUpMs: med((r) => r.submittedLineMs) })}`);
}

async function runNode(args: string[], env: Record<string, string>): Promise<{ exitCode: number | null; totalMs: number; lines: { at: number; text: string }[] }> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete childEnv.AMQP_URL;
  delete childEnv.DATABASE_URL;
  const started = nowMs();
  const child = spawn(process.execPath, args, { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: { at: number; text: string }[] = [];
  createInterface({ input: child.stdout }).on('line', (text) => lines.push({ at: nowMs() - started, text }));
  createInterface({ input: child.stderr }).on('line', (text) => lines.push({ at: nowMs() - started, text: `stderr: ${text}` }));
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
  return { exitCode, totalMs: r2(nowMs() - started), lines };
}

function parse(r: { totalMs: number; lines: { at: number; text: string }[] }): DemoRun {
  const submitted = r.lines.find((l) => /^task:\s.*submitted.* at [\d.]+s/.test(l.text));
  const success = r.lines.find((l) => /success after [\d.]+ s .*\([\d.]+s since start-up\)/.test(l.text));
  const num = (text: string | undefined, re: RegExp) => {
    const m = text?.match(re);
    return m ? Number(m[1]) : null;
  };
  // Round table rows: round, sites, examples, train loss, eval loss, eval acc, '<n> ms'.
  const roundDurationsMs = r.lines.map((l) => l.text.match(/^\s*\d+\s+\d+\s+\d+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+(\d+) ms$/)).filter((m) => m).map((m) => Number(m![1]));
  return {
    exitCode: 0,
    totalMs: r.totalMs,
    submittedLineMs: submitted ? r2(submitted.at) : null,
    submittedAtS: num(submitted?.text, / at ([\d.]+)s/),
    trainingS: num(success?.text, /success after ([\d.]+) s/),
    successSinceStartS: num(success?.text, /\(([\d.]+)s since start-up\)/),
    roundDurationsMs,
    shutdownMs: success ? r2(r.totalMs - success.at) : null,
    milestonesMs: Object.fromEntries(
      MILESTONES.map((m) => [m, r.lines.filter((l) => l.text.startsWith(m)).pop()?.at]).filter(([, at]) => at !== undefined).map(([m, at]) => [m, r2(at as number)]),
    ),
  };
}
