import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundledDataDir, formatCsv, partitionTable, readCsvFile } from '@fl/datasets';
import { InMemoryBus, RabbitMqBus } from '@fl/messaging';
import { createTestDatabase } from '@fl/persistence';
import { connectInfra, Infra, loadConfig, publishDefaultModel } from '@fl/runtime';
import { createCoordinatorApp } from '../apps/coordinator/src/bootstrap';
import { CoordinatorConfig } from '../apps/coordinator/src/config';
import { createEdgeWorkerApp } from '../apps/edge-worker/src/bootstrap';
import { EdgeWorkerConfig } from '../apps/edge-worker/src/config';
import { createGatewayApp } from '../apps/gateway/src/bootstrap';
import { GatewayConfig } from '../apps/gateway/src/config';
import { Cleanup, withCleanup } from './support/cleanup';
import { createBenchVhost } from './support/rabbitmq';
import { writeResult } from './support/results';
import { r2, summarize, Summary } from './support/stats';
import { BusEvent, BusTap } from './support/tapped-bus';

/**
 * One task of `rounds` rounds on a gateway, a coordinator and three edge
 * workers in this process, on RabbitMQ + PostgreSQL, once per transport:
 * noDelay on (production), noDelay off (amqplib's default, the baseline)
 * and the in-memory bus (lower bound). Every app gets its own bus, wrapped
 * in a tap that timestamps publishes and deliveries, which is where the
 * workers' own fit/evaluate durations (in their result payloads) come from.
 *
 * Per round: overhead = duration_ms (coordinator.rounds) - (slowest fit + slowest evaluate);
 * cycle overhead also counts what the coordinator does between two rounds
 * (next round's start - this round's start - the same worker time).
 * Round 1 (model package transfer, ONNX sessions created) is left out of the statistics.
 * Each round's evaluation is a phase of its own here (CHAINED_EVALUATION=off), so that the phases can be told apart.
 */
const SITES = 3;
const TERMINAL = ['task.succeeded', 'task.failed', 'task.cancelled'];
const QUIET = { LOG_FORMAT: 'pretty', LOG_LEVEL: 'warn' };
const TARGET_MS = 20;

interface Transport {
  key: 'memory' | 'noDelay' | 'nagle';
  label: string;
  noDelay?: boolean;
}

const TRANSPORTS: Transport[] = [
  { key: 'memory', label: 'in-memory bus (lower bound)' },
  { key: 'noDelay', label: 'RabbitMQ, noDelay: true (production)', noDelay: true },
  { key: 'nagle', label: 'RabbitMQ, noDelay: false (baseline)', noDelay: false },
];

/** Milliseconds along the coordinator's critical path; they add up to the round's duration (+ betweenRounds = cycle). */
interface Phases {
  beforeFit: number;
  fitToWorkers: number;
  fitWorkMax: number;
  fitBackToCoordinator: number;
  betweenFitAndEvaluate: number;
  evaluateToWorkers: number;
  evaluateWorkMax: number;
  evaluateBackToCoordinator: number;
  afterEvaluate: number;
  betweenRounds: number | null;
  roundCompletedConfirm: number;
}

interface RoundRow {
  round: number;
  durationMs: number;
  workMs: number;
  overheadMs: number;
  cycleMs: number | null;
  cycleOverheadMs: number | null;
  fitMs: number[];
  evaluateMs: number[];
  phases: Phases;
}

interface TransportResult {
  transport: Transport;
  /** One task per repeat; the statistics pool their rounds. */
  tasks: { taskId: number; rounds: RoundRow[] }[];
  summary: { durationMs: Summary; workMs: Summary; overheadMs: Summary; cycleOverheadMs: Summary; phasesMedianMs: Record<keyof Phases, number> };
}

export interface RoundBenchOptions {
  rounds: number;
  /** Tasks per transport, run interleaved (memory, noDelay, nagle, memory, ...) so that drift hits all alike. */
  repeats: number;
}

export async function roundBench(opts: RoundBenchOptions): Promise<void> {
  const rounds = Math.max(3, opts.rounds);
  const repeats = Math.max(1, opts.repeats);
  const results = await withCleanup(async (cleanup) => {
    const { url: amqpUrl, vhost } = await createBenchVhost(cleanup);
    const db = await createTestDatabase('fl_bench');
    cleanup.add(`dropping database ${db.name}`, () => db.drop());
    const dir = mkdtempSync(join(tmpdir(), 'fl-bench-round-'));
    cleanup.add(`removing ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
    const shards = writeShards(join(dir, 'sites'));
    console.log(`round bench: ${repeats} x ${rounds} rounds x ${SITES} workers per transport, iris, local_epochs 1, batch_size 64; vhost ${vhost}, database ${db.name}`);

    const tasks = new Map<Transport, TransportResult['tasks']>(TRANSPORTS.map((t) => [t, []]));
    for (let rep = 1; rep <= repeats; rep++) {
      for (const transport of TRANSPORTS) {
        const t0 = Date.now();
        tasks.get(transport)!.push(await withCleanup((c) => runTask(c, transport, { amqpUrl, databaseUrl: db.url, artifactDir: join(dir, 'artifacts'), shards, rounds })));
        console.log(`  ${transport.label}, task ${rep}/${repeats}: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      }
    }
    return TRANSPORTS.map((transport) => {
      const ts = tasks.get(transport)!;
      return { transport, tasks: ts, summary: summarise(ts.flatMap((t) => t.rounds)) };
    });
  });
  print(results);
  const file = writeResult('round', { rounds, repeats, sites: SITES, targetOverheadMs: TARGET_MS, transports: results });
  console.log(`written ${file}`);
}

function writeShards(dir: string): string[] {
  const shards = partitionTable(readCsvFile(join(bundledDataDir(), 'iris.csv')), SITES, 42, 'iid');
  return shards.map((shard, i) => {
    const file = join(dir, `site-${i + 1}`, 'iris.csv');
    mkdirSync(join(dir, `site-${i + 1}`), { recursive: true });
    writeFileSync(file, formatCsv(shard.header, shard.rows));
    return file;
  });
}

async function runTask(
  cleanup: Cleanup,
  transport: Transport,
  env: { amqpUrl: string; databaseUrl: string; artifactDir: string; shards: string[]; rounds: number },
): Promise<{ taskId: number; rounds: RoundRow[] }> {
  const tap = new BusTap();
  const shared = transport.key === 'memory' ? new InMemoryBus() : undefined;
  if (shared) cleanup.add('closing the in-memory bus', () => shared.close());

  const busFor = async (app: string) => {
    if (shared) return tap.wrap(app, shared);
    const bus = await RabbitMqBus.connect(env.amqpUrl, { noDelay: transport.noDelay, connectionName: `bench-${app}`, logger: quietLogger });
    cleanup.add(`closing the broker connection of ${app}`, () => bus.close());
    return tap.wrap(app, bus);
  };
  const infraFor = async (app: string): Promise<Infra> => {
    const infra = await connectInfra({ bus: await busFor(app), databaseUrl: env.databaseUrl, poolSize: 10, registry: { backend: 'local', artifactDir: env.artifactDir }, connectionName: `bench-${app}` });
    cleanup.add(`closing the infrastructure of ${app}`, () => infra.close());
    return infra;
  };

  const gatewayInfra = await infraFor('gateway');
  const gateway = await createGatewayApp(loadConfig(GatewayConfig, { ...QUIET, GATEWAY_ID: 'bench-gateway', AUTH_MODE: 'none' }), gatewayInfra);
  cleanup.add('closing the gateway', () => gateway.close());
  await gateway.listen(0, '127.0.0.1');
  const url = (await gateway.getUrl()).replace('[::1]', '127.0.0.1');

  const coordinatorInfra = await infraFor('coordinator');
  const coordinator = await createCoordinatorApp(loadConfig(CoordinatorConfig, { ...QUIET, COORDINATOR_ID: 'bench-coordinator', HEALTH_PORT: '0', SITE_AUTH: 'none', CHAINED_EVALUATION: 'off' }), coordinatorInfra);
  cleanup.add('closing the coordinator', () => coordinator.close());

  const names = env.shards.map((_, i) => `bench-site-${i + 1}`);
  // Registered = the coordinator has handled each worker's node.registered (rows from an earlier transport do not count).
  const registered = names.map((n) =>
    tap.waitFor((e) => e.app === 'coordinator' && e.kind === 'handled' && e.name === 'node.registered' && e.payload.sender === n, 30_000, `registration of ${n}`),
  );
  for (const [i, name] of names.entries()) {
    const worker = await createEdgeWorkerApp(loadConfig(EdgeWorkerConfig, { ...QUIET, NODE_NAME: name, DATA_PATH: env.shards[i], HEALTH_PORT: '0' }), await busFor(name), false);
    cleanup.add(`closing ${name}`, () => worker.close());
  }
  await Promise.all(registered);

  const { version } = await publishDefaultModel(gatewayInfra.registry, 'iris');
  const ended = tap.waitFor((e) => e.app === 'gateway' && e.kind === 'handled' && TERMINAL.includes(e.name), 120_000 + env.rounds * 10_000, 'end of the task');
  ended.catch(() => undefined); // observed below; avoids an unhandled rejection if the POST fails first
  const res = await fetch(`${url}/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      user_id: 'bench',
      use_case: 'iris',
      model_name: version.name,
      model_version: version.version,
      num_global_iterations: env.rounds,
      run_name: `bench_${transport.key}`,
      experiment_name: 'bench',
      min_fit_clients: SITES,
      local_epochs: 1,
      batch_size: 64,
    }),
  });
  if (!res.ok) throw new Error(`POST /tasks answered ${res.status}: ${await res.text()}`);
  const taskId = ((await res.json()) as { id: number }).id;
  const end = await ended;
  if (end.name !== 'task.succeeded' || end.payload.task_id !== taskId) {
    throw new Error(`task ${end.payload.task_id} ended with ${end.name}: ${String(end.payload.reason ?? '')}`);
  }

  const stored: { round: number; duration_ms: number }[] = await coordinatorInfra.dataSource.query(
    `SELECT round, duration_ms FROM coordinator.rounds WHERE task_id = $1 AND status = 'completed' ORDER BY round`,
    [taskId],
  );
  return { taskId, rounds: analyse(tap.events.filter((e) => e.payload.task_id === taskId), stored) };
}

/** Per round, from the tap's timestamps and the stored durations. */
function analyse(events: BusEvent[], stored: { round: number; duration_ms: number }[]): RoundRow[] {
  const pick = (app: (a: string) => boolean, kind: BusEvent['kind'], name: string, round: number) =>
    events.filter((e) => app(e.app) && e.kind === kind && e.name === name && e.round === round);
  const coordinator = (a: string) => a === 'coordinator';
  const site = (a: string) => a.startsWith('bench-site-');
  const first = (es: BusEvent[]) => Math.min(...es.map((e) => e.at));
  const last = (es: BusEvent[]) => Math.max(...es.map((e) => e.at));
  type Figures = { started_at: string; finished_at: string };
  /** The coordinator's event carrying a round's figures: its own round.completed, or a rounds.completed with it among others. */
  const eventOf = (kind: BusEvent['kind'], round: number): { event: BusEvent; figures: Figures } | undefined => {
    for (const e of events) {
      if (!coordinator(e.app) || e.kind !== kind) continue;
      if (e.name === 'round.completed' && e.round === round) return { event: e, figures: e.payload.figures as Figures };
      const carried = e.name === 'rounds.completed' ? (e.payload.rounds as { round: number; figures: Figures }[]).find((r) => r.round === round) : undefined;
      if (carried) return { event: e, figures: carried.figures };
    }
    return undefined;
  };
  const figuresOf = (round: number) => {
    const found = eventOf('publish', round);
    return found ? { started: Date.parse(found.figures.started_at), finished: Date.parse(found.figures.finished_at), event: found.event } : undefined;
  };

  return stored.map(({ round, duration_ms }) => {
    const fig = figuresOf(round)!;
    const next = figuresOf(round + 1);
    const fitOut = first(pick(coordinator, 'publish', 'round.fit', round));
    const fitIn = last(pick(coordinator, 'delivered', 'round.fit-result', round));
    const evalOut = first(pick(coordinator, 'publish', 'round.evaluate', round));
    const evalIn = last(pick(coordinator, 'delivered', 'round.evaluate-result', round));
    const fitAnswers = pick(site, 'publish', 'round.fit-result', round);
    const evalAnswers = pick(site, 'publish', 'round.evaluate-result', round);
    const fitMs = fitAnswers.map((e) => Number(e.payload.duration_ms));
    const evaluateMs = evalAnswers.map((e) => Number(e.payload.duration_ms));
    const workMs = Math.max(...fitMs) + Math.max(...evaluateMs);
    const cycleMs = next ? next.started - fig.started : null;
    const confirmed = eventOf('confirmed', round)!.event;
    return {
      round,
      durationMs: duration_ms,
      workMs,
      overheadMs: duration_ms - workMs,
      cycleMs,
      cycleOverheadMs: cycleMs === null ? null : cycleMs - workMs,
      fitMs,
      evaluateMs,
      phases: {
        beforeFit: r2(fitOut - fig.started),
        fitToWorkers: r2(last(pick(site, 'delivered', 'round.fit', round)) - fitOut),
        fitWorkMax: Math.max(...fitMs),
        fitBackToCoordinator: r2(fitIn - last(fitAnswers)),
        betweenFitAndEvaluate: r2(evalOut - fitIn),
        evaluateToWorkers: r2(last(pick(site, 'delivered', 'round.evaluate', round)) - evalOut),
        evaluateWorkMax: Math.max(...evaluateMs),
        evaluateBackToCoordinator: r2(evalIn - last(evalAnswers)),
        afterEvaluate: r2(fig.finished - evalIn),
        betweenRounds: next ? r2(next.started - fig.finished) : null,
        roundCompletedConfirm: r2(confirmed.at - fig.event.at),
      },
    };
  });
}

function summarise(rows: RoundRow[]): TransportResult['summary'] {
  const steady = rows.filter((r) => r.round > 1);
  const nums = (f: (r: RoundRow) => number | null) => steady.map(f).filter((x): x is number => x !== null);
  const keys = Object.keys(steady[0].phases) as (keyof Phases)[];
  return {
    durationMs: summarize(nums((r) => r.durationMs)),
    workMs: summarize(nums((r) => r.workMs)),
    overheadMs: summarize(nums((r) => r.overheadMs)),
    cycleOverheadMs: summarize(nums((r) => r.cycleOverheadMs)),
    phasesMedianMs: Object.fromEntries(keys.map((k) => [k, summarize(nums((r) => r.phases[k])).median])) as Record<keyof Phases, number>,
  };
}

function print(results: TransportResult[]): void {
  const n = results[0]?.summary.durationMs.n ?? 0;
  console.log(`\nper-round figures (ms) over ${n} rounds per transport (round 1 of each task left out); target: overhead < ${TARGET_MS} ms`);
  console.table(
    Object.fromEntries(
      results.map(({ transport, summary: s }) => [
        transport.label,
        {
          'round median': s.durationMs.median,
          'round p95': s.durationMs.p95,
          'workers median': s.workMs.median,
          'overhead median': s.overheadMs.median,
          'overhead p95': s.overheadMs.p95,
          'cycle overhead median': s.cycleOverheadMs.median,
          'cycle overhead p95': s.cycleOverheadMs.p95,
        },
      ]),
    ),
  );
  console.log('where a round goes: median ms along the coordinator\'s critical path (fit and evaluate phases add up to the round duration; + between rounds = cycle)');
  const keys = Object.keys(results[0].summary.phasesMedianMs) as (keyof Phases)[];
  const label = (k: keyof Phases) => (k === 'roundCompletedConfirm' ? '  of which round.completed confirm' : k);
  console.table(Object.fromEntries(keys.map((k) => [label(k), Object.fromEntries(results.map((r) => [r.transport.key, r.summary.phasesMedianMs[k]]))])));
}

const quietLogger = {
  log: () => undefined,
  warn: (m: string) => console.warn(m),
  error: (m: string) => console.error(m),
};
