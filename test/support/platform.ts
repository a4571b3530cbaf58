import { ChildProcess, execFile, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { bundledDataDir, formatCsv, partitionTable, readCsvFile } from '@fl/datasets';
import { createTestVhost, TestBroker, TestVhost } from '../../libs/messaging/src/testing/rabbitmq-test-vhost';
import { createTestDatabase } from '../../libs/persistence/src/testing';
import { TestIssuer } from './oidc';
import { CliConfig } from '../../apps/cli/src/config';
import { enrolSite } from '../../apps/cli/src/nodes';
import { RabbitMqManagement } from '@fl/messaging';
import { loadConfig, nodeFlagsOf } from '@fl/runtime';
import { freePort } from './ports';

const ROOT = resolve(__dirname, '..', '..');
/** The built apps: `npm run build`'s dist/, or another build of the same tree (FL_DIST_DIR), so that a rebuild does not pull the files from under a running suite. */
const DIST = process.env.FL_DIST_DIR ? resolve(ROOT, process.env.FL_DIST_DIR) : join(ROOT, 'dist');
const run = promisify(execFile);
/** Linux's USER_HZ, the unit of /proc/<pid>/stat's times (`getconf CLK_TCK`). */
const CLOCK_TICKS_PER_S = 100;

interface Proc {
  name: string;
  child: ChildProcess;
  log: string;
  exited: Promise<number | string | null>;
}

/**
 * A whole deployment for one test file: its own PostgreSQL database, its own
 * RabbitMQ vhost, an artifact folder, and the compiled apps started as
 * separate processes, as `npm run start:*` starts them.
 */
export class Platform {
  readonly dir = mkdtempSync(join(tmpdir(), 'fl-e2e-'));
  readonly artifactDir = join(this.dir, 'artifacts');
  private procs: Proc[] = [];
  private db?: { url: string; drop(): Promise<void> };
  private vhost?: TestVhost;
  gatewayUrl = '';
  /** Registry settings for the apps that use the registry (gateway, coordinators, CLI); edge workers never get them. */
  registryEnv: Record<string, string> = {};
  /** The identity provider the gateway trusts; fetch() sends an admin token of it unless told otherwise. */
  readonly issuer = new TestIssuer();
  private adminToken = '';
  /** What each app was started with, so that restart() starts it again the same way. */
  private readonly started = new Map<string, { entry: string; env: Record<string, string> }>();

  /** `services`: a PostgreSQL server URL and a RabbitMQ broker other than the test defaults (the chaos suite's own). */
  constructor(private readonly services: { postgresUrl?: string; broker?: TestBroker } = {}) {}

  get databaseUrl(): string {
    return this.db!.url;
  }

  get amqpUrl(): string {
    return this.vhost!.url;
  }

  get vhostName(): string {
    return this.vhost!.name;
  }

  rabbitmqctl(...args: string[]): Promise<string> {
    return this.vhost!.rabbitmqctl(...args);
  }

  env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return {
      ...process.env, AMQP_URL: this.amqpUrl, DATABASE_URL: this.databaseUrl, ARTIFACT_DIR: this.artifactDir, DB_POOL_SIZE: '4',
      SITE_USER_SUFFIX: this.siteUserSuffix, ...extra,
    };
  }

  /**
   * Site broker users are global to the broker, vhosts are not: each platform's site users carry its
   * vhost's name, so that parallel runs (site-1 here, site-1 there) stay apart.
   */
  get siteUserSuffix(): string {
    return `.${this.vhostName}`;
  }

  /** RabbitMQ's management API of the test broker (.ci/run enables the plugin); `FL_TEST_RABBITMQ_MANAGEMENT_URL` overrides it. */
  readonly managementUrl = process.env.FL_TEST_RABBITMQ_MANAGEMENT_URL ?? 'http://guest:guest@127.0.0.1:15672';
  /** Broker users made for sites, deleted by stop(). */
  private readonly siteUsers = new Set<string>();
  /** Each enrolled site's AMQP_URL (its own user and password). */
  readonly siteUrls: Record<string, string> = {};

  /**
   * Enrols a site as `npm run cli -- nodes enroll` does (its own broker user, reaching only its queue
   * and the coordinators' inbound keys) and returns its AMQP_URL. Through the management API on the
   * test broker; on another broker (the chaos suite's own node) by running the printed rabbitmqctl commands.
   */
  async enrolSite(name: string): Promise<string> {
    const viaManagement = !this.services.broker;
    const config = loadConfig(CliConfig, {
      AMQP_URL: this.amqpUrl, SITE_USER_SUFFIX: this.siteUserSuffix, ...(viaManagement ? { RABBITMQ_MANAGEMENT_URL: this.managementUrl } : {}),
    });
    const c = new Client({ connectionString: this.databaseUrl });
    await c.connect();
    try {
      const enrolment = await enrolSite(config, c, name);
      this.siteUsers.add(enrolment.user);
      for (const [tool, ...args] of enrolment.commands) {
        if (tool !== 'rabbitmqctl') throw new Error(`unexpected enrolment command ${tool}`);
        await this.rabbitmqctl(...args);
      }
      this.siteUrls[name] = enrolment.env.AMQP_URL;
      return enrolment.env.AMQP_URL;
    } finally {
      await c.end();
    }
  }

  /** Starts the gateway, `coordinators` coordinators (they share tasks through leases) and `sites` edge workers. */
  async start(opts: { sites: number; coordinators: number; coordinatorEnv?: Record<string, string>; gatewayEnv?: Record<string, string> }): Promise<void> {
    await this.provision();
    await this.startGateway(opts.gatewayEnv);
    await this.startCoordinators(opts.coordinators, opts.coordinatorEnv);
    await this.startSites(opts.sites);
    await this.sitesOnline(opts.sites);
  }

  /** A fresh database and vhost for this platform alone. */
  async provision(): Promise<void> {
    this.db = await createTestDatabase('fl_e2e', this.services.postgresUrl);
    this.vhost = await createTestVhost('fl-e2e', this.services.broker);
    await this.issuer.start();
    this.adminToken = await this.issuer.token('e2e-admin', ['admin'], { expiresIn: '2h' });
  }

  async startGateway(env: Record<string, string> = {}): Promise<void> {
    const port = await freePort();
    this.gatewayUrl = `http://127.0.0.1:${port}`;
    this.spawn('gateway', 'apps/gateway/src/main.js', { PORT: String(port), HOST: '127.0.0.1', ...this.issuer.env(), ...this.registryEnv, ...env });
    await this.until('the gateway answers', async () => (await this.fetch('GET', '/')).status === 200);
  }

  /** Health and metrics port of each app that has one, by app name. */
  readonly healthPorts: Record<string, number> = {};

  async startCoordinators(count: number, env: Record<string, string> = {}, first = 1): Promise<void> {
    for (let i = first; i < first + count; i++) {
      const name = `coordinator-${i}`;
      this.healthPorts[name] = await freePort();
      this.spawn(name, 'apps/coordinator/src/main.js', {
        COORDINATOR_ID: `e2e-coordinator-${i}`, SWEEP_INTERVAL_S: '1', HEALTH_PORT: String(this.healthPorts[name]), ...this.registryEnv, ...env,
      });
    }
  }

  /** Edge workers site-1..site-N, each with a disjoint shuffled share of iris. */
  async startSites(count: number): Promise<void> {
    const shards = partitionTable(readCsvFile(join(bundledDataDir(), 'iris.csv')), count, 7, 'iid');
    for (const [i, shard] of shards.entries()) {
      const name = `site-${i + 1}`;
      const dir = join(this.dir, name);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'iris.csv'), formatCsv(shard.header, shard.rows));
      await this.startSite(name, dir);
    }
  }

  /** One enrolled edge worker on the data in `dataPath`, with extra settings (e.g. USE_CASES). */
  async startSite(name: string, dataPath: string, env: Record<string, string> = {}): Promise<void> {
    this.healthPorts[name] = await freePort();
    const amqpUrl = await this.enrolSite(name);
    this.spawn(name, 'apps/edge-worker/src/main.js', { NODE_NAME: name, AMQP_URL: amqpUrl, DATA_PATH: dataPath, HEARTBEAT_INTERVAL_S: '2', HEALTH_PORT: String(this.healthPorts[name]), ...env });
  }

  /** What an app has logged so far. */
  logOf(name: string): string {
    return readFileSync(join(this.dir, `${name}.log`), 'utf8');
  }

  /** Waits until the coordinators have heard from `count` edge workers (as GET /nodes shows). */
  async sitesOnline(count: number): Promise<void> {
    await this.until(`${count} edge workers are online`, async () => {
      const nodes = (await this.fetch('GET', '/nodes')).body as { status: string }[];
      return nodes.filter((n) => n.status === 'online').length === count;
    });
  }

  /**
   * A simulator (apps/simulator) named `name`: `count` virtual edge workers in
   * one process, which share its broker user (the coordinators must run with
   * SITE_AUTH=none); waits until the gateway shows them all online.
   */
  async startSimulator(name: string, count: number, env: Record<string, string>): Promise<void> {
    this.spawn(name, 'apps/simulator/src/main.js', { SIMULATED_WORKERS: String(count), HEARTBEAT_INTERVAL_S: '2', ...env });
    const proc = this.procs.find((p) => p.name === name)!;
    await this.until(`${count} virtual workers of ${name} are online`, async () => {
      if (proc.child.exitCode !== null) throw new Error(`${name} exited with ${proc.child.exitCode}:\n${this.logOf(name)}`);
      const nodes = (await this.fetch('GET', '/nodes')).body as { status: string }[];
      return nodes.filter((n) => n.status === 'online').length === count;
    }, 120_000);
  }

  /** Starts an app again, as it was first started, after kill(); its log goes on in the same file. */
  restart(name: string): void {
    const how = this.started.get(name);
    if (!how) throw new Error(`no app named ${name} was ever started`);
    if (this.procs.some((p) => p.name === name)) throw new Error(`${name} is still running`);
    this.spawn(name, how.entry, how.env);
  }

  private spawn(name: string, entry: string, env: Record<string, string>): void {
    this.started.set(name, { entry, env });
    const log = join(this.dir, `${name}.log`);
    const out = createWriteStream(log, { flags: 'a' });
    // As the images start them, with the app's node flags (entry: apps/<app>/src/main.js).
    // FL_E2E_PROFILE=<dir>: a V8 CPU profile of each app, written there when it exits (not when killed).
    const profile = process.env.FL_E2E_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.FL_E2E_PROFILE}`, `--cpu-prof-name=${name}.${Date.now()}.cpuprofile`] : [];
    const child = spawn(process.execPath, [...nodeFlagsOf(entry.split('/')[1]), ...profile, join(DIST, entry)], { cwd: ROOT, env: this.env(env), stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.pipe(out);
    child.stderr!.pipe(out);
    const exited = new Promise<number | string | null>((res) => child.on('exit', (code, signal) => res(code ?? signal)));
    this.procs.push({ name, child, log, exited });
  }

  /** Sends `signal` to one app (SIGSTOP and SIGCONT freeze and thaw it). */
  signal(name: string, signal: NodeJS.Signals): void {
    const p = this.procs.find((x) => x.name === name);
    if (!p) throw new Error(`no app named ${name}`);
    p.child.kill(signal);
  }

  /** Sends `signal` to one app and waits until it has exited; returns how it ended. */
  async kill(name: string, signal: NodeJS.Signals): Promise<number | string | null> {
    const p = this.procs.find((x) => x.name === name);
    if (!p) throw new Error(`no app named ${name}`);
    p.child.kill(signal);
    const ended = await p.exited;
    this.procs = this.procs.filter((x) => x !== p);
    return ended;
  }

  /** Runs the CLI as a user would and returns its stdout. */
  async cli(...args: string[]): Promise<string> {
    return this.cliWith({}, ...args);
  }

  /** The CLI with extra environment variables (e.g. RABBITMQ_MANAGEMENT_URL). */
  async cliWith(env: Record<string, string>, ...args: string[]): Promise<string> {
    const { stdout } = await run(process.execPath, [join(DIST, 'apps/cli/src/main.js'), ...args], { cwd: ROOT, env: this.env({ ...this.registryEnv, ...env }) });
    return stdout;
  }

  /** A gateway request, as the e2e admin unless `headers` says otherwise (an `authorization: ''` sends none). */
  async fetch(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Headers }> {
    headers = { authorization: `Bearer ${this.adminToken}`, ...headers };
    if (headers.authorization === '') delete headers.authorization;
    const res = await fetch(`${this.gatewayUrl}${path}`, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* not JSON: keep the text for the assertion message */
    }
    return { status: res.status, body: parsed, headers: res.headers };
  }

  /** Runs SQL against this platform's database (tests read what the apps stored). */
  async query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    const c = new Client({ connectionString: this.databaseUrl });
    await c.connect();
    try {
      return (await c.query(sql, params)).rows as T[];
    } finally {
      await c.end();
    }
  }

  /** Polls a task through the API until its status is one of `statuses` (default: any final one); returns it. */
  async taskWhen(id: number, statuses: string[] = ['success', 'failed', 'cancelled'], timeoutMs = 60_000): Promise<any> {
    let task: any;
    await this.until(`task ${id} is ${statuses.join(' or ')}`, async () => {
      task = (await this.fetch('GET', `/tasks/${id}`)).body;
      return statuses.includes(task.status);
    }, timeoutMs);
    return task;
  }

  /** An app's resident memory from /proc/<pid>/status, in bytes: now (VmRSS) and its peak so far (VmHWM). Linux only. */
  memory(name: string): { rss: number; peak: number } {
    const p = this.procs.find((x) => x.name === name);
    if (!p?.child.pid) throw new Error(`no running app named ${name}`);
    const status = readFileSync(`/proc/${p.child.pid}/status`, 'utf8');
    const kib = (field: string) => {
      const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
      if (!m) throw new Error(`/proc/${p.child.pid}/status has no ${field}`);
      return Number(m[1]) * 1024;
    };
    return { rss: kib('VmRSS'), peak: kib('VmHWM') };
  }

  /** An app's CPU time so far (user and system, all its threads) from /proc/<pid>/stat, in seconds. Linux only. */
  cpuSeconds(name: string): number {
    const p = this.procs.find((x) => x.name === name);
    if (!p?.child.pid) throw new Error(`no running app named ${name}`);
    const stat = readFileSync(`/proc/${p.child.pid}/stat`, 'utf8');
    // The fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
  }

  /** An app's log lines that are JSON objects (the apps log JSON by default). */
  jsonLogLines(name: string): Record<string, unknown>[] {
    const p = this.procs.find((x) => x.name === name);
    if (!p) throw new Error(`no app named ${name}`);
    return readFileSync(p.log, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  /** Polls `check` until it holds; fails after `timeoutMs` naming what it waited for, with the apps' logs. */
  async until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000, everyMs = 100): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      try {
        if (await check()) return;
      } catch (err) {
        last = err;
      }
      const dead = this.procs.find((p) => p.child.exitCode !== null);
      if (dead) throw new Error(`waiting until ${what}: ${dead.name} exited with ${dead.child.exitCode}\n${this.logs()}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting until ${what} (${last ?? 'condition false'})\n${this.logs()}`);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }

  logs(): string {
    return this.procs.map((p) => `----- ${p.name} -----\n${readFileSync(p.log, 'utf8').split('\n').slice(-40).join('\n')}`).join('\n');
  }

  /**
   * Stops every app with SIGTERM; returns how each ended: its exit code, or the
   * signal it ended by ('SIGTERM' once Nest's shutdown hooks have run, 'SIGKILL'
   * if it was still running after 10 s).
   */
  async stop(): Promise<Record<string, number | string | null>> {
    for (const p of this.procs) if (p.child.exitCode === null) p.child.kill('SIGTERM');
    const codes: Record<string, number | string | null> = {};
    await Promise.all(
      this.procs.map(async (p) => {
        const killer = setTimeout(() => p.child.kill('SIGKILL'), 10_000);
        codes[p.name] = await p.exited;
        clearTimeout(killer);
      }),
    );
    this.procs = [];
    for (const user of this.siteUsers) {
      if (this.services.broker) await this.rabbitmqctl('delete_user', user).catch(() => undefined);
      else await new RabbitMqManagement(this.managementUrl).revoke(user);
    }
    await this.db?.drop();
    await this.vhost?.dispose();
    if (this.adminToken) await this.issuer.stop();
    rmSync(this.dir, { recursive: true, force: true });
    return codes;
  }
}
