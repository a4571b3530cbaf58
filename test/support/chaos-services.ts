import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { TestBroker } from '../../libs/messaging/src/testing/rabbitmq-test-vhost';
import { freePort } from './ports';

const run = promisify(execFile);

/**
 * Throw-away RabbitMQ and PostgreSQL servers for the chaos suite. The
 * machine's shared servers (5672, 5432) serve other test runs at the same
 * time and must never be stopped; these are private to one test file, on
 * free ports, with their data in a temporary folder, so that a test can stop,
 * restart and kill them at will. stop() removes everything; a process exit
 * without it (a crash, Ctrl-C) still kills the servers by their pid.
 */

const RABBITMQ_BIN = '/usr/lib/rabbitmq/bin';
const started = new Set<() => void>();
process.once('exit', () => {
  for (const kill of started) kill();
});

function killPidFile(file: string): void {
  try {
    const pid = Number(readFileSync(file, 'utf8').split('\n')[0].trim());
    if (pid > 0) process.kill(pid, 'SIGKILL');
  } catch {
    /* not running */
  }
}

async function poll(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}: ${(last as Error)?.message ?? 'condition false'}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * A RabbitMQ node of its own (`flchaos-<hex>@localhost`), run as root with
 * its own Erlang cookie (in a private HOME), config, plugins (none: no
 * management listener to collide with the shared node's) and Mnesia folder.
 * Durable queues and persistent messages survive restart(), as on a real node.
 */
export class ChaosRabbitMq {
  readonly node = `flchaos-${randomBytes(3).toString('hex')}@localhost`;
  private readonly dir = mkdtempSync(join(tmpdir(), 'fl-chaos-rabbitmq-'));
  private readonly pidFile = join(this.dir, 'rabbitmq.pid');
  private readonly kill = () => killPidFile(this.pidFile);
  private port = 0;
  private distPort = 0;

  static async start(): Promise<ChaosRabbitMq> {
    const r = new ChaosRabbitMq();
    r.port = await freePort();
    r.distPort = await freePort();
    for (const d of ['home', 'mnesia', 'log']) mkdirSync(join(r.dir, d));
    writeFileSync(join(r.dir, 'rabbitmq.conf'), `listeners.tcp.local = 127.0.0.1:${r.port}\n`);
    writeFileSync(join(r.dir, 'enabled_plugins'), '[].\n');
    started.add(r.kill);
    await r.startNode();
    return r;
  }

  get url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}`;
  }

  /** For Platform: its vhost is made on this node. */
  get broker(): TestBroker {
    return { url: this.url, rabbitmqctl: (...args: string[]) => this.ctl(...args) };
  }

  private env(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      HOME: join(this.dir, 'home'),
      RABBITMQ_NODENAME: this.node,
      RABBITMQ_NODE_PORT: String(this.port),
      RABBITMQ_DIST_PORT: String(this.distPort),
      RABBITMQ_CONFIG_FILE: join(this.dir, 'rabbitmq.conf'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(this.dir, 'enabled_plugins'),
      RABBITMQ_MNESIA_BASE: join(this.dir, 'mnesia'),
      RABBITMQ_LOG_BASE: join(this.dir, 'log'),
      RABBITMQ_PID_FILE: this.pidFile,
    };
  }

  async ctl(...args: string[]): Promise<string> {
    // A generated password may start with '-', which rabbitmqctl would take for an option.
    if (['add_user', 'change_password', 'authenticate_user'].includes(args[0])) args = [args[0], '--', ...args.slice(1)];
    const { stdout } = await run(join(RABBITMQ_BIN, 'rabbitmqctl'), ['-q', '-n', this.node, ...args], { env: this.env(), timeout: 60_000 });
    return stdout;
  }

  /** Boots the node (it keeps its data across restarts) and waits until it serves AMQP. */
  private async startNode(): Promise<void> {
    await run(join(RABBITMQ_BIN, 'rabbitmq-server'), ['-detached'], { env: this.env() });
    await poll(`RabbitMQ node ${this.node} has booted`, async () => (await this.ctl('await_startup', '--timeout', '5'), true), 90_000);
  }

  /** `rabbitmqctl stop_app`: the broker application stops (every connection drops), the Erlang node stays. */
  stopApp(): Promise<string> {
    return this.ctl('stop_app');
  }

  async startApp(): Promise<void> {
    await this.ctl('start_app');
    await this.ctl('await_startup');
  }

  /** Stops the whole node (its Erlang VM exits); start() boots it again from its data. */
  async stopNode(): Promise<void> {
    await this.ctl('stop', this.pidFile);
  }

  startAgain(): Promise<void> {
    return this.startNode();
  }

  /** Stops the node and removes its data. */
  async stop(): Promise<void> {
    if (existsSync(this.pidFile)) await this.ctl('stop', this.pidFile).catch(() => this.kill());
    started.delete(this.kill);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A PostgreSQL cluster of its own: initdb (trust auth) in a temporary folder
 * owned by the postgres user, served on a free port on 127.0.0.1.
 */
export class ChaosPostgres {
  private readonly dir = mkdtempSync(join(tmpdir(), 'fl-chaos-postgres-'));
  private readonly data = join(this.dir, 'data');
  private readonly kill = () => killPidFile(join(this.data, 'postmaster.pid'));
  private port = 0;

  static async start(): Promise<ChaosPostgres> {
    const pg = new ChaosPostgres();
    pg.port = await freePort();
    const { uid, gid } = postgresUser();
    chownSync(pg.dir, uid, gid);
    await pg.asPostgres('initdb', '-D', pg.data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync');
    started.add(pg.kill);
    await pg.startServer();
    return pg;
  }

  /** The server URL (database `postgres`), as Platform and createTestDatabase take it. */
  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  private async asPostgres(bin: string, ...args: string[]): Promise<string> {
    const { stdout } = await run('runuser', ['-u', 'postgres', '--', join(pgBinDir(), bin), ...args], { timeout: 60_000 });
    return stdout;
  }

  async startServer(): Promise<void> {
    await this.asPostgres('pg_ctl', '-D', this.data, '-l', join(this.dir, 'server.log'), '-w', '-t', '60', 'start',
      '-o', `-p ${this.port} -c listen_addresses=127.0.0.1 -k ${this.dir} -c fsync=off -c max_connections=200`);
    await poll('PostgreSQL accepts connections', async () => {
      const c = new Client({ connectionString: this.url });
      await c.connect();
      await c.end();
      return true;
    }, 30_000);
  }

  /** `pg_ctl stop -m fast`: every session is terminated, the server shuts down cleanly. */
  async stopServer(): Promise<void> {
    await this.asPostgres('pg_ctl', '-D', this.data, '-w', '-t', '60', '-m', 'fast', 'stop');
  }

  async stop(): Promise<void> {
    if (existsSync(join(this.data, 'postmaster.pid'))) {
      await this.asPostgres('pg_ctl', '-D', this.data, '-w', '-m', 'immediate', 'stop').catch(() => this.kill());
    }
    started.delete(this.kill);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function postgresUser(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgres:'));
  if (!line) throw new Error('no postgres user on this machine');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

function pgBinDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb')));
  if (!versions.length) throw new Error(`no PostgreSQL server binaries under ${root}`);
  return join(root, versions.sort((a, b) => Number(b) - Number(a))[0], 'bin');
}
