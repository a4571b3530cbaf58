import { ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { bundledDataDir, IRIS, modelInputs } from '@fl/datasets';
import { RabbitMqBus } from '@fl/messaging';
import { buildClassifierPackage, encodeSafetensors, modelPackageFiles } from '@fl/models';
import { createTestDatabase } from '@fl/persistence';
import { publishModelPackage } from '@fl/registry';
import { connectInfra, loadConfig } from '@fl/runtime';
import { createGatewayApp } from '../apps/gateway/src/bootstrap';
import { GatewayConfig } from '../apps/gateway/src/config';
import { BrokerFloor, measureBrokerFloor } from './support/broker-floor';
import { Cleanup, withCleanup } from './support/cleanup';
import { createBenchVhost } from './support/rabbitmq';
import { writeResult } from './support/results';
import { r2, summarize, Summary } from './support/stats';
import { BusEvent, BusTap } from './support/tapped-bus';
import { summarizeTurns } from './support/turns';

/** The compiled apps beside this compiled bench (dist/ under `npm run bench`). */
const DIST = resolve(__dirname, '..');
const TERMINAL = ['task.succeeded', 'task.failed', 'task.cancelled'];

interface Case {
  key: string;
  label: string;
  workers: number;
  /** Separate worker processes, or one simulator with all of them. */
  processes: boolean;
  /** Width of the model's hidden layer: iris 4 -> h -> 3 has 8h + 3 parameters. */
  hidden: number;
  rounds: number;
  /** Flower 1.6 on this machine, separate processes, ms per round. */
  flowerMs?: number;
  /** chained: each round's evaluation travels with the next fit (the coordinator's default); apart: CHAINED_EVALUATION=off. */
  evaluation?: Evaluation;
  /** The coordinator's ROUND_EVENTS_WINDOW_MS (default: its own default). */
  roundEventsMs?: number;
  /** The compiled build whose coordinator and workers run the case (default: this one). */
  dist?: string;
  /** 'this', or the other build's folder (--against). */
  build?: string;
  /** Which of --turns (1 to K). */
  turn?: number;
}

type Evaluation = 'chained' | 'apart';

const CASES: Case[] = [
  { key: 'p2', label: 'N=2 processes, 1k params', workers: 2, processes: true, hidden: 125, rounds: 40, flowerMs: 9 },
  { key: 'p10', label: 'N=10 processes, 1k params', workers: 10, processes: true, hidden: 125, rounds: 40, flowerMs: 30 },
  { key: 'p50', label: 'N=50 processes, 1k params', workers: 50, processes: true, hidden: 125, rounds: 25, flowerMs: 147 },
  { key: 's1000', label: 'N=1000 simulated, 1k params', workers: 1000, processes: false, hidden: 125, rounds: 10 },
  { key: 'p10-1m', label: 'N=10 processes, 1M params', workers: 10, processes: true, hidden: 125_000, rounds: 10, flowerMs: 960 },
];

interface CaseResult {
  key: string;
  label: string;
  workers: number;
  processes: boolean;
  parameters: number;
  rounds: number;
  /** Ms from one round's start to the next's, rounds 2..R-1. */
  cycleMs: Summary;
  /** Ms from a round's start to its end as stored (fit, aggregate, evaluate, checkpoint; chained: until the next round's answers), rounds 2..R. */
  durationMs: Summary;
  coordinatorCpuMsPerRound: number;
  coordinatorPeakRssMiB: number;
  coordinatorRssAtStartMiB: number;
  workersCpuMsPerRound: number;
  /** CPU per round of the RabbitMQ and PostgreSQL servers, where they run on this machine (null otherwise): every task of theirs, not only this one's. */
  brokerCpuMsPerRound: number | null;
  /** CPU per round of this bench process: the gateway, which records every round, and the bench's own bookkeeping. */
  gatewayCpuMsPerRound: number;
  databaseCpuMsPerRound: number | null;
  workersStartS: number;
  /** The machine's 1-minute load average when the task started and ended (2 cores: above 2, others wait for a core). */
  loadAverage: [number, number];
  flowerMs?: number;
  evaluation: Evaluation;
  /** ROUND_EVENTS_WINDOW_MS, where the bench set it. */
  roundEventsMs?: number;
  /** 'this' build, or the other build's folder (--against). */
  build: string;
  turn: number;
  /** Separate processes only: the same messages exchanged by bare amqplib processes, measured just before (support/broker-floor.ts). */
  brokerFloor?: BrokerFloor;
}

export interface RoundsBenchOptions {
  /** Rounds per task for every case (default: each case's own). */
  rounds?: number;
  /** Case keys to run (default: all). */
  cases?: string[];
  /**
   * How the coordinator runs each round's evaluation (default: chained only). With both, each case
   * runs once each way, one after the other: the other way is a baseline measured in the same run.
   */
  evaluation?: string[];
  /**
   * The coordinator's ROUND_EVENTS_WINDOW_MS values to run each case with (default: its default). With
   * several (e.g. 250,0: 0 is one event per round, as earlier releases), each case runs once with each.
   */
  roundEvents?: string[];
  /**
   * Another compiled build (its `dist` folder, e.g. of the last release, checked out and built beside
   * this one) whose coordinator and workers run each case too, by turns with this build's: the
   * baseline measured in the same run. The gateway, in the bench's own process, is this build's.
   */
  against?: string;
  /** Runs of every case (and build), in turns; with --against each turn swaps which build goes first. */
  turns?: number;
}

/**
 * `npm run bench -- rounds [--rounds R] [--cases p2,s1000]`: per-round wall
 * time of the platform itself, with zero-compute workers (fit returns the
 * global weights, evaluation reports 0), for N workers as separate processes
 * and for N = 1,000 virtual workers in one simulator process; the
 * coordinator's CPU time per round and its peak RSS; the CPU time per round
 * of the workers, of the gateway (this process), and of the RabbitMQ and
 * PostgreSQL servers where they run on this machine: on two cores, what all
 * of them use in a round bounds how short it can be. Flower 1.6's figures on
 * this machine, same setup with separate processes, are printed beside ours.
 *
 * Every case gets its own vhost, database, gateway (in this process), one
 * coordinator (a child process, SITE_AUTH=none) and its workers: simulator
 * processes of one virtual worker each (the edge worker's module and
 * handlers, SIM_COMPUTE=zero), or one simulator of 1,000. Round 1 (model
 * package transfer) is left out: the coordinator's CPU time and RSS
 * high-water mark are taken between the gateway's receipt of round 1's
 * round.completed and of the last round's, its peak RSS reset at the first
 * (/proc/<pid>/clear_refs). Wall time per round is the coordinator's stored
 * start of one round to the start of the next (so it includes the checkpoint
 * and everything between rounds).
 *
 * `--round-events 250,0` runs each case with each ROUND_EVENTS_WINDOW_MS (0: one
 * round event per round, as earlier releases), one after the other.
 *
 * `--against <dist>` runs each case also with another compiled build's
 * coordinator and workers (e.g. the last release, checked out and built beside
 * this one), and `--turns K` runs everything K times, the builds' order
 * swapped at each turn: on a machine whose speed drifts by tens of percent
 * from one minute to the next, a change of a few percent shows only over
 * several turns. A table of medians over the turns, with the change against
 * the other build, follows the runs' own.
 *
 * For looking closer: FL_BENCH_KEEP=1 keeps each case's folder (the apps'
 * logs), FL_BENCH_LOG_LEVEL=log makes the apps say more, and
 * FL_BENCH_PROFILE=<dir> writes V8 CPU profiles of the coordinator, the first worker process and a
 * simulator of many workers there. The coordinator and workers start with their build's node flags
 * (SERVICE_NODE_FLAGS), or with FL_BENCH_NODE_FLAGS when set ('' for none).
 *
 * Each case of separate processes first measures its broker floor (support/broker-floor.ts): the
 * same messages, with the same guarantees, between bare amqplib processes that do nothing else.
 */
export async function roundsBench(opts: RoundsBenchOptions): Promise<void> {
  const unknown = (opts.cases ?? []).filter((k) => !CASES.some((c) => c.key === k));
  if (unknown.length) throw new Error(`unknown rounds case(s) ${unknown.join(', ')}; choose from ${CASES.map((c) => c.key).join(', ')}`);
  const ways = (opts.evaluation?.length ? opts.evaluation : ['chained']) as Evaluation[];
  const badWay = ways.find((w) => w !== 'chained' && w !== 'apart');
  if (badWay) throw new Error(`unknown --evaluation ${badWay}; choose from chained, apart`);
  const windows: (number | undefined)[] = opts.roundEvents?.length ? opts.roundEvents.map(Number) : [undefined];
  const badWindow = opts.roundEvents?.find((w) => !/^\d+$/.test(w));
  if (badWindow !== undefined) throw new Error(`--round-events takes milliseconds >= 0, got '${badWindow}'`);
  const turns = opts.turns ?? 1;
  if (!Number.isInteger(turns) || turns < 1) throw new Error(`--turns takes a whole number >= 1, got ${opts.turns}`);
  const against = opts.against === undefined ? undefined : resolve(opts.against);
  if (against !== undefined) {
    const missing = ['apps/coordinator/src/main.js', 'apps/simulator/src/main.js'].filter((f) => !existsSync(join(against, f)));
    if (missing.length) throw new Error(`--against ${opts.against}: not a compiled build (no ${missing.join(', ')} in ${against}; build it with npm run build)`);
  }
  const builds = [{ build: 'this', dist: DIST }, ...(against ? [{ build: against, dist: against }] : [])];
  const plain = CASES.filter((c) => !opts.cases?.length || opts.cases.includes(c.key)).flatMap((c) =>
    ways.flatMap((evaluation) =>
      windows.map((roundEventsMs) => {
        const label = [c.label, ...(ways.length > 1 ? [evaluation] : []), ...(windows.length > 1 ? [`events ${roundEventsMs} ms`] : [])].join(', ');
        return { ...c, rounds: Math.max(3, opts.rounds ?? c.rounds), evaluation, roundEventsMs, label };
      }),
    ),
  );
  // Turn by turn, each case with each build, the builds' order swapped at every turn.
  const cases = Array.from({ length: turns }, (_, t) => t + 1).flatMap((turn) =>
    plain.flatMap((c) =>
      (turn % 2 ? builds : [...builds].reverse()).map(({ build, dist }) => ({
        ...c,
        dist,
        build,
        turn,
        label: [c.label, ...(against ? [build === 'this' ? 'this build' : 'against'] : []), ...(turns > 1 ? [`turn ${turn}`] : [])].join(', '),
      })),
    ),
  );
  console.log(`rounds bench: zero-compute workers, iris-shaped MLP, evaluation ${ways.join(' and ')}${windows[0] === undefined ? '' : `, round events every ${windows.join(' and ')} ms`}; ${plain.map((c) => `${c.key} (${c.rounds} rounds)`).join(', ')}${against ? `; against ${against}` : ''}${turns > 1 ? `; ${turns} turns` : ''}`);
  const results: CaseResult[] = [];
  for (const c of cases) {
    const t0 = Date.now();
    results.push(await withCleanup((cleanup) => runCase(cleanup, c)));
    console.log(`  ${c.label}: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  print(results);
  const summary = against || turns > 1 ? summarizeTurns(results, against) : undefined;
  const file = writeResult('rounds', { cases: results, ...(summary ? { summary } : {}) });
  console.log(`written ${file}`);
}

async function runCase(cleanup: Cleanup, c: Case): Promise<CaseResult> {
  const { url: amqpUrl } = await createBenchVhost(cleanup);
  const db = await createTestDatabase('fl_bench');
  cleanup.add(`dropping database ${db.name}`, () => db.drop());
  const dir = mkdtempSync(join(tmpdir(), `fl-bench-rounds-${c.key}-`));
  if (process.env.FL_BENCH_KEEP) console.log(`keeping ${dir}`);
  else cleanup.add(`removing ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  const artifactDir = join(dir, 'artifacts');

  const tap = new BusTap();
  const gatewayBus = await RabbitMqBus.connect(amqpUrl, { connectionName: 'bench-rounds-gateway', logger: quietLogger });
  cleanup.add('closing the gateway connection', () => gatewayBus.close());
  const infra = await connectInfra({ bus: tap.wrap('gateway', gatewayBus), databaseUrl: db.url, poolSize: 4, registry: { backend: 'local', artifactDir }, connectionName: 'bench-rounds-gateway' });
  cleanup.add('closing the gateway infrastructure', () => infra.close());
  const gateway = await createGatewayApp(loadConfig(GatewayConfig, { LOG_FORMAT: 'pretty', LOG_LEVEL: 'warn', AUTH_MODE: 'none', GATEWAY_ID: 'bench-gateway', RATE_LIMIT_PER_MINUTE: '100000' }), infra);
  cleanup.add('closing the gateway', () => gateway.close());
  await gateway.listen(0, '127.0.0.1');
  const url = (await gateway.getUrl()).replace('[::1]', '127.0.0.1');

  const model = await publishBenchModel(infra.registry, c.hidden);
  // The broker's part alone, before any of the platform's processes start (they would share the cores).
  const brokerFloor = c.processes
    ? await measureBrokerFloor(cleanup, amqpUrl, {
        workers: c.workers,
        rounds: c.rounds,
        instructionBytes: model.weightsBytes,
        answerBytes: model.weightsBytes,
        ...floorHeaders(c.workers),
        cpuOf: (pids) => pids.reduce((sum, pid) => sum + cpuNsIfAlive(pid), 0),
        brokerPids: () => serverProcesses().broker,
      })
    : undefined;
  const env = { AMQP_URL: amqpUrl, DATABASE_URL: db.url, ARTIFACT_DIR: artifactDir, LOG_FORMAT: 'json', LOG_LEVEL: process.env.FL_BENCH_LOG_LEVEL ?? 'warn' };
  const dist = c.dist ?? DIST;
  const coordinator = startChild(cleanup, dir, dist, 'coordinator', 'apps/coordinator/src/main.js', {
    ...env, COORDINATOR_ID: 'bench-rounds', SITE_AUTH: 'none', HEALTH_PORT: '0', SWEEP_INTERVAL_S: '1', DB_POOL_SIZE: '10',
    CHAINED_EVALUATION: c.evaluation === 'apart' ? 'off' : 'on',
    ...(c.roundEventsMs === undefined ? {} : { ROUND_EVENTS_WINDOW_MS: String(c.roundEventsMs) }),
  });
  const rssAtStart = await waitForRss(coordinator);

  const workerEnv = { ...env, SIM_COMPUTE: 'zero', SIM_PARTITION: 'copy', USE_CASES: 'iris', DATA_PATH: join(bundledDataDir(), 'iris.csv') };
  const started = Date.now();
  const workers = c.processes
    ? Array.from({ length: c.workers }, (_, i) => startChild(cleanup, dir, dist, `worker-${i + 1}`, 'apps/simulator/src/main.js', { ...workerEnv, SIMULATED_WORKERS: '1', SIM_NODE_PREFIX: `w${i + 1}` }))
    : [startChild(cleanup, dir, dist, 'simulator', 'apps/simulator/src/main.js', { ...workerEnv, SIMULATED_WORKERS: String(c.workers), SIM_NODE_PREFIX: 'sim' })];
  await until(`${c.workers} workers online`, 300_000, [coordinator, ...workers], async () => {
    const [{ n }] = await infra.dataSource.query(`SELECT count(*)::int AS n FROM coordinator.nodes WHERE status = 'online'`);
    return n === c.workers;
  });
  const workersStartS = (Date.now() - started) / 1000;
  console.log(`  ${c.label}: ${c.workers} workers online after ${workersStartS.toFixed(1)} s; running ${c.rounds} rounds`);

  // A round's event is round.completed, or rounds.completed with the rounds that completed while the last was on its way (its round: the last of them).
  const roundEvent = (e: BusEvent) => e.app === 'gateway' && e.kind === 'delivered' && (e.name === 'round.completed' || e.name === 'rounds.completed');
  const first = tap.waitFor((e) => roundEvent(e) && e.round === 1, 600_000, 'round 1');
  const last = tap.waitFor((e) => roundEvent(e) && e.round === c.rounds, 1_200_000, `round ${c.rounds}`);
  const ended = tap.waitFor((e) => e.app === 'gateway' && e.kind === 'handled' && TERMINAL.includes(e.name), 1_200_000, 'end of the task');
  for (const p of [first, last, ended]) p.catch(() => undefined); // observed below
  const servers = serverProcesses();
  const atFirst = first.then(() => {
    const sample = { coordinator: cpuNs(coordinator.pid), workers: workers.reduce((s, w) => s + cpuNs(w.pid), 0), servers: serversCpuNs(servers), gateway: processCpuNs() };
    writeFileSync(`/proc/${coordinator.pid}/clear_refs`, '5'); // resets VmHWM to the current RSS
    return sample;
  });
  const atLast = last.then(() => ({ coordinator: cpuNs(coordinator.pid), workers: workers.reduce((s, w) => s + cpuNs(w.pid), 0), servers: serversCpuNs(serverProcesses()), gateway: processCpuNs(), peakRss: statusKb(coordinator.pid, 'VmHWM') }));

  const res = await fetch(`${url}/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      user_id: 'bench', use_case: 'iris', model_name: model.name, model_version: model.version, num_global_iterations: c.rounds,
      run_name: `rounds_${c.key}`, experiment_name: 'bench', min_fit_clients: c.workers, fraction_fit: 1, local_epochs: 1, batch_size: 64, round_timeout_s: 300,
    }),
  });
  if (!res.ok) throw new Error(`POST /tasks answered ${res.status}: ${await res.text()}`);
  const taskId = ((await res.json()) as { id: number }).id;
  const loadBefore = loadAverage();
  const end = await ended;
  if (end.name !== 'task.succeeded' || end.payload.task_id !== taskId) throw new Error(`task ${end.payload.task_id} ended with ${end.name}: ${String(end.payload.reason ?? '')}`);
  const [a, b] = [await atFirst, await atLast];
  console.log(`  ${c.label}: task done ${((Date.now() - started) / 1000 - workersStartS).toFixed(1)} s after submission; stopping`);

  const rows: { round: number; started: number; duration_ms: number; participants: number }[] = await infra.dataSource.query(
    `SELECT round, extract(epoch FROM started_at) * 1000 AS started, duration_ms, participants FROM coordinator.rounds WHERE task_id = $1 AND status = 'completed' ORDER BY round`,
    [taskId],
  );
  if (rows.length !== c.rounds || rows.some((r) => r.participants !== c.workers)) throw new Error(`expected ${c.rounds} rounds of ${c.workers} participants, got ${JSON.stringify(rows.map((r) => r.participants))}`);
  const steady = rows.filter((r) => r.round > 1);
  const cycles = steady.slice(0, -1).map((r, i) => Number(steady[i + 1].started) - Number(r.started));
  const measured = c.rounds - 1;
  return {
    key: c.key,
    label: c.label,
    workers: c.workers,
    processes: c.processes,
    parameters: 8 * c.hidden + 3,
    rounds: c.rounds,
    cycleMs: summarize(cycles),
    durationMs: summarize(steady.map((r) => r.duration_ms)),
    coordinatorCpuMsPerRound: r2((b.coordinator - a.coordinator) / 1e6 / measured),
    coordinatorPeakRssMiB: r2(b.peakRss / 1024),
    coordinatorRssAtStartMiB: r2(rssAtStart / 1024),
    workersCpuMsPerRound: r2((b.workers - a.workers) / 1e6 / measured),
    gatewayCpuMsPerRound: r2((b.gateway - a.gateway) / 1e6 / measured),
    brokerCpuMsPerRound: servers.broker.length ? serverCpuMsPerRound(a.servers, b.servers, measured, 'broker') : null,
    databaseCpuMsPerRound: servers.database.length ? serverCpuMsPerRound(a.servers, b.servers, measured, 'database') : null,
    workersStartS: r2(workersStartS),
    loadAverage: [loadBefore, loadAverage()],
    flowerMs: c.flowerMs,
    evaluation: c.evaluation ?? 'chained',
    ...(c.roundEventsMs === undefined ? {} : { roundEventsMs: c.roundEventsMs }),
    build: c.build ?? 'this',
    turn: c.turn ?? 1,
    ...(brokerFloor ? { brokerFloor } : {}),
  };
}

/**
 * Payload headers of the size a chained round's fit instruction and answer
 * carry for n sites (the broker floor's messages): `"round":0` and
 * `"sender":""` are filled in per round and site.
 */
function floorHeaders(n: number): { instructionHeader: string; answerHeader: string } {
  const sites = Array.from({ length: n }, (_, i) => `w${i + 1}-0001`);
  const sha = 'f'.repeat(64);
  const id = '00000000-0000-4000-8000-000000000000';
  const instruction = {
    task_id: 1, round: 0, correlation_id: id, use_case: 'iris', participants: sites, package_sha256: sha, weights_sha256: sha,
    evaluates_round: 1, evaluators: sites, reply_to: 'fl.coordinator.bench-rounds.round.fit.result', config: { local_epochs: 1, batch_size: 64, learning_rate: 0.05, seed: 43 },
  };
  const evaluation = { task_id: 1, round: 1, sender: 'w', correlation_id: id, status: 'ok', examples: 30, loss: 0, accuracy: 0, duration_ms: 0 };
  const answer = { task_id: 1, round: 0, sender: '', correlation_id: id, status: 'ok', examples: 120, train_loss: 0, duration_ms: 0, weights_sha256: sha, trained_from: sha, evaluation };
  return { instructionHeader: JSON.stringify(instruction), answerHeader: JSON.stringify(answer) };
}

function cpuNsIfAlive(pid: number): number {
  try {
    return cpuNs(pid);
  } catch {
    return 0;
  }
}

/** The iris-shaped MLP 4 -> hidden -> 3 (8 * hidden + 3 parameters) with the use case's fixed normalisation. */
async function publishBenchModel(registry: Parameters<typeof publishModelPackage>[0], hidden: number): Promise<{ name: string; version: number; weightsBytes: number }> {
  const inputs = modelInputs(IRIS);
  const name = `bench_mlp_${hidden}`;
  const pkg = buildClassifierPackage({ name, featureNames: inputs.names, classes: IRIS.label.classes, hidden: [hidden], normalization: { mean: inputs.mean, std: inputs.std }, seed: 0 });
  await registry.createModel(name, { description: `rounds bench: iris 4-${hidden}-3`, tags: { use_case: 'iris' } });
  const { version } = await publishModelPackage(registry, name, modelPackageFiles(pkg), { use_case: 'iris' });
  return { name, version: version.version, weightsBytes: encodeSafetensors(pkg.initialWeights).length };
}

/** An app of the benchmark run as its own process, its output in `<dir>/<name>.log`. */
class Child {
  readonly process: ChildProcess;
  readonly log: string;

  constructor(
    readonly name: string,
    dist: string,
    entry: string,
    env: Record<string, string>,
    dir: string,
  ) {
    this.log = join(dir, `${name}.log`);
    const out = createWriteStream(this.log);
    // FL_BENCH_PROFILE=<dir>: a V8 CPU profile of the coordinator, of the first worker process and of a simulator of many workers, written when they exit.
    const profile = process.env.FL_BENCH_PROFILE && (name === 'coordinator' || name === 'simulator' || name === 'worker-1') ? ['--cpu-prof', `--cpu-prof-dir=${process.env.FL_BENCH_PROFILE}`, `--cpu-prof-name=${name}.cpuprofile`] : [];
    this.process = spawn(process.execPath, [...nodeFlags(dist), ...profile, join(dist, entry)], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.process.stdout!.pipe(out);
    this.process.stderr!.pipe(out);
  }

  get pid(): number {
    return this.process.pid!;
  }

  get exited(): boolean {
    return this.process.exitCode !== null || this.process.signalCode !== null;
  }

  /** How it ended and the end of its log. */
  describe(): string {
    return `${this.name} exited with ${this.process.exitCode ?? this.process.signalCode}:\n${readFileSync(this.log, 'utf8').split('\n').slice(-30).join('\n')}`;
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise((r) => this.process.once('exit', r));
    this.process.kill('SIGTERM');
    const killer = setTimeout(() => this.process.kill('SIGKILL'), 15_000);
    await gone;
    clearTimeout(killer);
  }
}

/**
 * The node flags a build starts its coordinator and workers with (its
 * SERVICE_NODE_FLAGS; none for a build from before they existed), or
 * FL_BENCH_NODE_FLAGS for every build when set (space-separated; empty: none).
 */
function nodeFlags(dist: string): readonly string[] {
  const override = process.env.FL_BENCH_NODE_FLAGS;
  if (override !== undefined) return override.split(' ').filter(Boolean);
  const file = join(dist, 'libs/runtime/src/node-flags.js');
  return existsSync(file) ? (require(file) as { SERVICE_NODE_FLAGS: readonly string[] }).SERVICE_NODE_FLAGS : [];
}

function startChild(cleanup: Cleanup, dir: string, dist: string, name: string, entry: string, env: Record<string, string>): Child {
  const child = new Child(name, dist, entry, env, dir);
  cleanup.add(`stopping ${name}`, () => child.stop());
  return child;
}

async function until(what: string, timeoutMs: number, children: Child[], check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    const dead = children.find((c) => c.exited);
    if (dead) throw new Error(`waiting for ${what}: ${dead.describe()}`);
    if (Date.now() > deadline) throw new Error(`bench: no ${what} within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** CPU time of a process in ns: the sum over its threads of /proc/<pid>/task/<tid>/schedstat's first field. */
function cpuNs(pid: number): number {
  let total = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return total;
}

/**
 * The RabbitMQ (beam.smp) and PostgreSQL (postgres) processes of this machine,
 * if the bench's servers run here and are visible: their CPU time shows what a
 * round costs beyond the platform's own processes. PostgreSQL's backends come
 * and go with connections: they are looked for again at the last round.
 */
function serverProcesses(): { broker: number[]; database: number[] } {
  const found = { broker: [] as number[], database: [] as number[] };
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const comm = readFileSync(`/proc/${entry}/comm`, 'utf8').trim();
      if (comm === 'beam.smp') found.broker.push(Number(entry));
      else if (comm === 'postgres' || comm.startsWith('postgres:')) found.database.push(Number(entry));
    } catch {
      // the process ended between the listing and the read
    }
  }
  return found;
}

function processCpuNs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) * 1000;
}

type ServersCpu = { broker: Map<number, number>; database: Map<number, number> };

/** CPU time of each server process that still runs, by pid. */
function serversCpuNs(servers: { broker: number[]; database: number[] }): ServersCpu {
  const of = (pids: number[]) => {
    const cpu = new Map<number, number>();
    for (const pid of pids) {
      try {
        cpu.set(pid, cpuNs(pid));
      } catch {
        // ended since (a PostgreSQL backend whose connection closed)
      }
    }
    return cpu;
  };
  return { broker: of(servers.broker), database: of(servers.database) };
}

/**
 * Ms of CPU per round of one server's processes between two samples: those
 * present in both, and those started in between (a PostgreSQL backend for a
 * connection opened meanwhile) with all of theirs. A process that ended in
 * between is not counted.
 */
function serverCpuMsPerRound(a: ServersCpu, b: ServersCpu, rounds: number, server: keyof ServersCpu): number {
  let ns = 0;
  for (const [pid, cpu] of b[server]) ns += cpu - (a[server].get(pid) ?? 0);
  return r2(ns / 1e6 / rounds);
}

function loadAverage(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

/** A kB figure of /proc/<pid>/status, e.g. VmHWM (peak RSS) or VmRSS. */
function statusKb(pid: number, field: string): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`));
  return line ? Number(line.split(/\s+/)[1]) : NaN;
}

/** The coordinator's RSS once it has started (its RSS stops growing), in kB. */
async function waitForRss(child: Child): Promise<number> {
  let last = 0;
  for (let i = 0; i < 120; i++) {
    await new Promise((r) => setTimeout(r, 250));
    if (child.exited) throw new Error(child.describe());
    const rss = statusKb(child.pid, 'VmRSS');
    if (rss > 0 && Math.abs(rss - last) < 256) return rss;
    last = rss;
  }
  return last;
}

function print(results: CaseResult[]): void {
  console.log('\nper round, rounds 2..R (ms; CPU in ms of CPU time; RSS in MiB); Flower 1.6 on this machine, separate processes; target: half of Flower');
  console.table(
    Object.fromEntries(
      results.map((r) => [
        r.label,
        {
          'wall median': r.cycleMs.median,
          'wall p95': r.cycleMs.p95,
          'round (stored) median': r.durationMs.median,
          'coordinator CPU': r.coordinatorCpuMsPerRound,
          'coordinator peak RSS': r.coordinatorPeakRssMiB,
          'workers CPU': r.workersCpuMsPerRound,
          'gateway CPU': r.gatewayCpuMsPerRound,
          'RabbitMQ CPU': r.brokerCpuMsPerRound ?? '-',
          'PostgreSQL CPU': r.databaseCpuMsPerRound ?? '-',
          'load avg': r.loadAverage.join(' → '),
          'broker floor': r.brokerFloor?.wallMs.median ?? '-',
          'floor CPU': r.brokerFloor ? r2(r.brokerFloor.sitesCpuMs + r.brokerFloor.driverCpuMs + (r.brokerFloor.brokerCpuMs ?? 0)) : '-',
          'Flower 1.6': r.flowerMs ?? '-',
          target: r.flowerMs === undefined ? '-' : r.flowerMs / 2,
          'met?': r.flowerMs === undefined ? '-' : r.cycleMs.median <= r.flowerMs / 2 ? 'yes' : 'no',
        },
      ]),
    ),
  );
  console.log(`workers online after (s): ${results.map((r) => `${r.key} ${r.workersStartS}`).join(', ')}`);
}

const quietLogger = {
  log: () => undefined,
  warn: (m: string) => console.warn(m),
  error: (m: string) => console.error(m),
};
