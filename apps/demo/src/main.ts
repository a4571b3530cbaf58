import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { INestApplication } from '@nestjs/common';
import { bundledDataDir, formatCsv, partitionTable, readCsvFile } from '@fl/datasets';
import { InMemoryBus, MessageBus, RabbitMqBus } from '@fl/messaging';
import { EmbeddedPostgres, startEmbeddedPostgres } from '@fl/persistence';
import { connectInfra, Infra, loadConfig, loadDotEnv, publishDefaultModel, registrySettingsFrom } from '@fl/runtime';
import { createGatewayApp } from '../../gateway/src/bootstrap';
import { GatewayConfig } from '../../gateway/src/config';
import { createCoordinatorApp } from '../../coordinator/src/bootstrap';
import { CoordinatorConfig } from '../../coordinator/src/config';
import { createEdgeWorkerApp } from '../../edge-worker/src/bootstrap';
import { EdgeWorkerConfig } from '../../edge-worker/src/config';

/**
 * The demo: a gateway, a coordinator and three edge workers, each worker
 * holding a different third of iris, run one federated task submitted
 * through the REST API. On a bare machine everything runs in this process
 * on an in-memory bus and an embedded PostgreSQL; with AMQP_URL and
 * DATABASE_URL set it uses that RabbitMQ and PostgreSQL instead.
 */
const SITES = 3;
const ROUNDS = Number(process.env.DEMO_ROUNDS ?? 5);
const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
const say = (line: string) => console.log(line);

interface Running {
  close(): Promise<void>;
}

const running: Running[] = [];
let stopping = false;

async function shutdown(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    for (const r of running.reverse()) await r.close().catch((err) => console.error(`while stopping: ${err}`));
  }
  process.exit(code);
}

process.on('SIGINT', () => {
  say('\ninterrupted: stopping the apps');
  void shutdown(130);
});
process.on('SIGTERM', () => void shutdown(143));

function writeShards(dir: string): string[] {
  const shards = partitionTable(readCsvFile(join(bundledDataDir(), 'iris.csv')), SITES, 42, 'iid');
  return shards.map((shard, i) => {
    const siteDir = join(dir, `site-${i + 1}`);
    mkdirSync(siteDir, { recursive: true });
    const file = join(siteDir, 'iris.csv');
    writeFileSync(file, formatCsv(shard.header, shard.rows));
    return file;
  });
}

async function http<T>(base: string, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : undefined,
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${text}`);
  return JSON.parse(text) as T;
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const probe = createServer();
    probe.once('error', () => res(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => res(true)));
  });
}

const pad = (s: string | number, n: number) => String(s).padStart(n);

async function main(): Promise<void> {
  loadDotEnv();
  const env = process.env;
  const verbose = env.DEMO_VERBOSE === '1';
  // The apps log in Nest's console format; only warnings and errors unless DEMO_VERBOSE=1.
  const appLogs = { LOG_FORMAT: 'pretty', LOG_LEVEL: verbose ? 'log' : 'warn' };
  const base = loadConfig(GatewayConfig, env);
  const dataDir = resolve(env.DEMO_DIR ?? './.data/demo');
  const artifactDir = resolve(env.ARTIFACT_DIR ?? join(dataDir, 'artifacts'));

  let databaseUrl = base.DATABASE_URL;
  let poolSize = base.DB_POOL_SIZE;
  if (!databaseUrl) {
    const pg: EmbeddedPostgres = await startEmbeddedPostgres({});
    running.push({ close: () => pg.close() });
    databaseUrl = pg.url;
    poolSize = 1;
  }
  let sharedBus: InMemoryBus | undefined;
  if (!base.AMQP_URL) {
    const bus = new InMemoryBus();
    running.push({ close: () => bus.close() });
    sharedBus = bus;
  }
  // On the embedded bus each site publishes as its own user, as with a site's own RabbitMQ user, and
  // the coordinator checks it (SITE_AUTH=broker). On a RabbitMQ given by AMQP_URL the demo's sites
  // share that URL's user, so the coordinator trusts the node names in the payloads instead.
  const siteAuth = sharedBus ? 'broker' : 'none';
  say(`broker: ${base.AMQP_URL ? 'RabbitMQ (AMQP_URL)' : 'embedded in-memory bus'}; database: ${base.DATABASE_URL ? 'PostgreSQL (DATABASE_URL)' : 'embedded PostgreSQL (PGlite, in memory)'}`);

  const infra = async (name: string): Promise<Infra> => {
    const registry = base.REGISTRY_BACKEND === 'local' ? { backend: 'local' as const, artifactDir } : registrySettingsFrom(base);
    const i = await connectInfra({ amqpUrl: base.AMQP_URL, bus: sharedBus, databaseUrl: databaseUrl!, poolSize, registry, connectionName: name });
    return i;
  };
  const track = (app: INestApplication) => running.push({ close: () => app.close() });

  const gatewayInfra = await infra('demo-gateway');
  // The demo runs on one machine for one person: authentication is off (the gateway warns of it).
  const gateway = await createGatewayApp(loadConfig(GatewayConfig, { ...env, ...appLogs, GATEWAY_ID: 'demo-gateway', AUTH_MODE: 'none' }), gatewayInfra);
  track(gateway);
  const port = (await portIsFree(base.PORT)) ? base.PORT : 0;
  if (port !== base.PORT) say(`port ${base.PORT} is taken: the gateway listens on a free port instead`);
  await gateway.listen(port, '127.0.0.1');
  const url = (await gateway.getUrl()).replace('[::1]', '127.0.0.1');
  say(`gateway:     ${url} (Swagger UI at ${url}/docs)`);

  const coordinator = await createCoordinatorApp(
    loadConfig(CoordinatorConfig, { ...env, ...appLogs, COORDINATOR_ID: 'demo-coordinator', SWEEP_INTERVAL_S: '1', HEALTH_PORT: '0', SITE_AUTH: siteAuth, SITE_USER_SUFFIX: '' }),
    await infra('demo-coordinator'),
  );
  track(coordinator);
  say(`coordinator: demo-coordinator (site identity: ${siteAuth === 'broker' ? "checked, each site publishes as its own user" : "trusted from payloads, the sites share AMQP_URL's user"})`);

  const shardFiles = writeShards(join(dataDir, 'sites'));
  for (let i = 0; i < SITES; i++) {
    const name = `demo-site-${i + 1}`;
    const cfg = loadConfig(EdgeWorkerConfig, { ...env, ...appLogs, NODE_NAME: name, DATA_PATH: shardFiles[i], HEARTBEAT_INTERVAL_S: '5', HEALTH_PORT: '0' });
    const bus: MessageBus = sharedBus ? sharedBus.asUser(name) : await RabbitMqBus.connect(base.AMQP_URL!, { connectionName: name });
    track(await createEdgeWorkerApp(cfg, bus, !sharedBus));
    say(`edge worker: ${name} holding ${shardFiles[i]} (50 of iris' 150 rows)`);
  }

  const { version } = await publishDefaultModel(gatewayInfra.registry, 'iris');
  say(`model:       '${version.name}' version ${version.version} published (softmax regression, 4 features -> 3 classes)`);

  const task = await http<{ id: number }>(url, 'POST', '/tasks', {
    user_id: 'demo',
    use_case: 'iris',
    model_name: version.name,
    model_version: version.version,
    num_global_iterations: ROUNDS,
    run_name: 'demo_run',
    experiment_name: 'Default',
    min_fit_clients: SITES,
  });
  const started = Date.now();
  say(`task:        ${task.id} submitted through POST /tasks (${ROUNDS} rounds, FedAvg, ${SITES} sites) at ${elapsed()}\n`);
  say(`${pad('round', 5)} ${pad('sites', 5)} ${pad('examples', 8)} ${pad('train loss', 10)} ${pad('eval loss', 9)} ${pad('eval acc', 8)} ${pad('duration', 9)}`);

  let shown = 0;
  for (;;) {
    const rounds = await http<{ round: number; participants: number; examples: number; train_loss: number; eval_loss: number; eval_accuracy: number; duration_ms: number }[]>(url, 'GET', `/tasks/${task.id}/rounds`);
    for (const r of rounds.slice(shown)) {
      say(`${pad(r.round, 5)} ${pad(r.participants, 5)} ${pad(r.examples, 8)} ${pad(r.train_loss.toFixed(4), 10)} ${pad(r.eval_loss.toFixed(4), 9)} ${pad(r.eval_accuracy.toFixed(4), 8)} ${pad(`${r.duration_ms} ms`, 9)}`);
    }
    shown = Math.max(shown, rounds.length);
    const t = await http<{ status: string; reason: string | null; metrics: { eval_accuracy: number; eval_examples: number } | null; result_model_name: string | null; result_model_version: number | null }>(url, 'GET', `/tasks/${task.id}`);
    if (t.status === 'success' && shown >= ROUNDS) {
      say(`\ntask ${task.id}: success after ${((Date.now() - started) / 1000).toFixed(2)} s of training (${elapsed()} since start-up)`);
      say(`final held-out accuracy: ${t.metrics!.eval_accuracy.toFixed(4)} on ${t.metrics!.eval_examples} rows no site trained on`);
      say(`registered model:        '${t.result_model_name}' version ${t.result_model_version}`);
      return shutdown(0);
    }
    if (t.status === 'failed' || t.status === 'cancelled') {
      say(`\ntask ${task.id}: ${t.status}: ${t.reason}`);
      return shutdown(1);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

main().catch(async (err) => {
  console.error(`demo failed: ${err instanceof Error ? err.stack ?? err.message : err}`);
  await shutdown(1);
});
