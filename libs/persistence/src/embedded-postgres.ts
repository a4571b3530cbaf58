import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

/**
 * Embedded PostgreSQL for the demo and tests: PGlite (Postgres compiled to WASM,
 * running in this process) served over the Postgres wire protocol by
 * pglite-socket, so `pg` and TypeORM's `postgres` driver connect to it like to any server.
 *
 * Caveats (all connections share ONE Postgres session inside PGlite):
 *  - use TypeORM `poolSize: 1` per data source;
 *  - never query through the DataSource from inside a `transaction(cb)` callback:
 *    the socket server only serves the connection that holds the open transaction,
 *    so the outer query waits for a transaction that waits for it (hang);
 *  - session state (SET, session-level advisory locks, LISTEN/NOTIFY) is shared
 *    by every client; session advisory locks exclude nobody;
 *  - a data folder may be used by one process only: enforced with a lock file.
 */

export interface EmbeddedPostgresOptions {
  /** Data folder; undefined = in-memory (lost on close). Created if missing. */
  dataDir?: string;
  /** TCP port; 0 (default) = pick a free one. */
  port?: number;
  /** Bind address; default 127.0.0.1. */
  host?: string;
  /** Max concurrent client connections accepted by the socket server (default 64). Keep above the sum of pool sizes. */
  maxConnections?: number;
  /**
   * 'in-process' runs PGlite in this process. 'child-process' runs it in a forked
   * Node process (same code) and only the URL crosses over: required under jest,
   * whose VM sandbox cannot run PGlite's dynamic `import()` of Node built-ins
   * (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING_FLAG), and useful to keep PGlite's
   * ~800 MB heap out of the app. Default: 'child-process' when JEST_WORKER_ID
   * is set, otherwise 'in-process'.
   */
  mode?: 'in-process' | 'child-process';
  /** child-process mode: how long to wait for the child to be ready (default 120 s). */
  startTimeoutMs?: number;
}

export interface EmbeddedPostgres {
  /** postgres://postgres@host:port/postgres */
  url: string;
  host: string;
  port: number;
  dataDir?: string;
  /** pid of the process running PGlite (this one, or the child). */
  pid: number;
  close(): Promise<void>;
}

export const EMBEDDED_LOCK_FILE = 'fl-embedded-postgres.lock';

/** Thrown when another live process (or this one) already serves the data folder. */
export class EmbeddedPostgresLockedError extends Error {
  constructor(
    readonly dataDir: string,
    readonly holderPid: number | undefined,
    detail: string,
  ) {
    super(
      `Embedded PostgreSQL data folder ${dataDir} is already in use (${detail}). ` +
        `Only one process may open a PGlite data folder at a time; two would silently lose rows. ` +
        `Stop the other process, or use another folder. If you are sure no process uses it, delete ` +
        `${path.join(dataDir, EMBEDDED_LOCK_FILE)}.`,
    );
    this.name = 'EmbeddedPostgresLockedError';
  }
}

interface LockContent {
  pid: number;
  hostname: string;
  token: string;
  startedAt: string;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err: any) {
    return err?.code === 'EPERM'; // exists but owned by someone else
  }
}

/** Acquire `<dataDir>/<EMBEDDED_LOCK_FILE>` atomically (O_EXCL). Stale locks (dead pid, same host) are taken over. */
function acquireLock(dataDir: string): { file: string; token: string } {
  const file = path.join(dataDir, EMBEDDED_LOCK_FILE);
  const token = randomUUID();
  const content: LockContent = {
    pid: process.pid,
    hostname: os.hostname(),
    token,
    startedAt: new Date().toISOString(),
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = fs.openSync(file, 'wx', 0o644);
      try {
        fs.writeSync(fd, JSON.stringify(content));
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      return { file, token };
    } catch (err: any) {
      if (err?.code !== 'EEXIST') throw err;
    }
    let holder: Partial<LockContent> = {};
    try {
      holder = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (err: any) {
      if (err?.code === 'ENOENT') continue; // released meanwhile: retry
      // unreadable / half-written: treat as held unless it is old
      const age = Date.now() - fs.statSync(file).mtimeMs;
      if (age < 10_000) throw new EmbeddedPostgresLockedError(dataDir, undefined, 'lock file being written');
    }
    const pid = typeof holder.pid === 'number' ? holder.pid : undefined;
    if (pid !== undefined && holder.hostname && holder.hostname !== os.hostname()) {
      throw new EmbeddedPostgresLockedError(dataDir, pid, `locked by pid ${pid} on host ${holder.hostname}`);
    }
    if (pid !== undefined && pidAlive(pid)) {
      const who = pid === process.pid ? 'this process' : `pid ${pid}`;
      throw new EmbeddedPostgresLockedError(dataDir, pid, `locked by ${who} since ${holder.startedAt}`);
    }
    // stale: holder is dead. Remove and retry the exclusive create (a racing
    // process may win; then we see its live pid on the next attempt).
    try {
      fs.unlinkSync(file);
    } catch (err: any) {
      if (err?.code !== 'ENOENT') throw err;
    }
  }
  throw new EmbeddedPostgresLockedError(dataDir, undefined, 'could not acquire the lock file');
}

function releaseLock(file: string, token: string): void {
  try {
    const holder = JSON.parse(fs.readFileSync(file, 'utf8')) as LockContent;
    if (holder.token === token) fs.unlinkSync(file);
  } catch {
    /* already gone */
  }
}

/**
 * Starts PGlite (in memory or on `dataDir`) and serves it on host:port.
 * Timing measured on the dev machine: fresh in-memory ~1.3 s, fresh on disk
 * ~3.3 s (initdb), reopening an existing folder ~0.2 s; ~800 MB RSS.
 */
export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions = {}): Promise<EmbeddedPostgres> {
  const mode = opts.mode ?? (process.env.JEST_WORKER_ID ? 'child-process' : 'in-process');
  return mode === 'child-process' ? startInChildProcess(opts) : startEmbeddedPostgresInProcess(opts);
}

/** Runs PGlite + the socket server in this process. */
export async function startEmbeddedPostgresInProcess(opts: EmbeddedPostgresOptions = {}): Promise<EmbeddedPostgres> {
  const host = opts.host ?? '127.0.0.1';
  let lock: { file: string; token: string } | undefined;
  let dataDir: string | undefined;
  if (opts.dataDir !== undefined) {
    dataDir = path.resolve(opts.dataDir);
    fs.mkdirSync(dataDir, { recursive: true });
    lock = acquireLock(dataDir);
  }
  const onExit = () => lock && releaseLock(lock.file, lock.token);
  if (lock) process.once('exit', onExit);

  let db: PGlite | undefined;
  let server: PGLiteSocketServer | undefined;
  try {
    db = dataDir ? await PGlite.create(dataDir) : await PGlite.create();
    server = new PGLiteSocketServer({
      db,
      host,
      port: opts.port ?? 0,
      maxConnections: opts.maxConnections ?? 64,
    });
    await server.start();
  } catch (err) {
    await server?.stop().catch(() => undefined);
    await db?.close().catch(() => undefined);
    if (lock) {
      process.removeListener('exit', onExit);
      releaseLock(lock.file, lock.token);
    }
    throw err;
  }
  const conn = server.getServerConn(); // "host:port"
  const port = Number(conn.slice(conn.lastIndexOf(':') + 1));
  const urlHost = host.includes(':') ? `[${host}]` : host;
  let closed: Promise<void> | undefined;
  const srv = server;
  const database = db;
  return {
    url: `postgres://postgres@${urlHost}:${port}/postgres`,
    host,
    port,
    dataDir,
    pid: process.pid,
    close() {
      closed ??= (async () => {
        try {
          await srv.stop();
          await database.close();
        } finally {
          if (lock) {
            process.removeListener('exit', onExit);
            releaseLock(lock.file, lock.token);
          }
        }
      })();
      return closed;
    },
  };
}

// ------------------------------------------------------------------ child process

/** Messages from the child (see embedded-postgres-child.ts). */
export type EmbeddedChildMessage =
  | { type: 'ready'; url: string; host: string; port: number; dataDir?: string }
  | { type: 'error'; name: string; message: string; dataDir?: string; holderPid?: number }
  | { type: 'closed' };

/**
 * JS run with `node -e` when this library is executed from TypeScript sources
 * (ts-jest): registers a transpile-only `.ts` loader, then loads the child entry.
 */
const TS_CHILD_BOOTSTRAP = `
const fs = require('fs');
const entry = process.argv[1];
const ts = require(require.resolve('typescript', { paths: [entry] }));
require.extensions['.ts'] = function (m, file) {
  const out = ts.transpileModule(fs.readFileSync(file, 'utf8'), {
    fileName: file,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022,
      esModuleInterop: true, experimentalDecorators: true, emitDecoratorMetadata: true },
  });
  m._compile(out.outputText, file);
};
require(entry);
`;

async function startInChildProcess(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  // required lazily so the in-process path does not load child_process
  const { spawn } = await import('node:child_process');
  const isTs = __filename.endsWith('.ts');
  const entry = path.join(__dirname, `embedded-postgres-child${isTs ? '.ts' : '.js'}`);
  const childOpts = { ...opts, mode: 'in-process' as const };
  const args = isTs
    ? ['-e', TS_CHILD_BOOTSTRAP, entry, JSON.stringify(childOpts)]
    : [entry, JSON.stringify(childOpts)];
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, JEST_WORKER_ID: '' },
  });

  const ready = await new Promise<Extract<EmbeddedChildMessage, { type: 'ready' }>>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`embedded PostgreSQL child did not start within ${opts.startTimeoutMs ?? 120_000} ms`));
    }, opts.startTimeoutMs ?? 120_000);
    const onExit = (code: number | null, signal: string | null) => {
      clearTimeout(timer);
      reject(new Error(`embedded PostgreSQL child exited before it was ready (code ${code}, signal ${signal})`));
    };
    child.once('exit', onExit);
    child.on('message', (m: EmbeddedChildMessage) => {
      if (m.type === 'ready') {
        clearTimeout(timer);
        child.removeListener('exit', onExit);
        resolve(m);
      } else if (m.type === 'error') {
        clearTimeout(timer);
        child.removeListener('exit', onExit);
        const err =
          m.name === 'EmbeddedPostgresLockedError'
            ? Object.assign(Object.create(EmbeddedPostgresLockedError.prototype), new Error(m.message), {
                name: m.name,
                message: m.message,
                dataDir: m.dataDir,
                holderPid: m.holderPid,
              })
            : Object.assign(new Error(m.message), { name: m.name });
        child.once('exit', () => reject(err));
        if (child.exitCode !== null) reject(err);
      }
    });
  });

  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  let closed: Promise<void> | undefined;
  return {
    url: ready.url,
    host: ready.host,
    port: ready.port,
    dataDir: ready.dataDir,
    pid: child.pid!,
    close() {
      closed ??= (async () => {
        if (child.connected) child.send({ type: 'close' });
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
        await exited;
        clearTimeout(timer);
      })();
      return closed;
    },
  };
}
