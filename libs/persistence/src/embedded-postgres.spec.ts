import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { ALL_MIGRATIONS, createDataSource, runMigrations } from './data-source';
import { EMBEDDED_LOCK_FILE, EmbeddedPostgresLockedError, startEmbeddedPostgres } from './embedded-postgres';
import { TaskEntity, CheckpointEntity } from './entities';

jest.setTimeout(120_000);

describe('embedded PostgreSQL (PGlite over the wire protocol)', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fl-pglite-'));
  });
  afterAll(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('in memory: migrations (concurrent and repeated), entities, bytea, parallel clients', async () => {
    const t0 = Date.now();
    const pg = await startEmbeddedPostgres({});
    const createMs = Date.now() - t0;
    const a = createDataSource({ url: pg.url, poolSize: 1 });
    const b = createDataSource({ url: pg.url, poolSize: 1 });
    try {
      const applied = (await Promise.all([runMigrations(a), runMigrations(b)])).flat();
      expect(applied).toEqual(ALL_MIGRATIONS.map((m) => m.name));
      expect(await runMigrations(a)).toEqual([]);

      const t = await a.getRepository(TaskEntity).save({
        userId: 'u', useCase: 'mnist', modelName: 'm', modelVersion: 1, numGlobalIterations: 2, settings: { a: [1, 2] },
      });
      const got = await b.getRepository(TaskEntity).findOneByOrFail({ id: t.id });
      expect(got.settings).toEqual({ a: [1, 2] });
      expect(got.status).toBe('pending');

      const weights = Buffer.from([0, 1, 2, 255, 254]);
      await a.getRepository(CheckpointEntity).save({ taskId: t.id, round: 1, weights, sha256: 'h' });
      const cp = await b.getRepository(CheckpointEntity).findOneByOrFail({ taskId: t.id, round: 1 });
      expect(cp.weights.equals(weights)).toBe(true);

      // many parameterised queries from two data sources at once must not interleave
      const q = (ds: DataSource, i: number) => ds.query('SELECT $1::int AS v, $2::text AS s', [i, `s${i}`]);
      const res = await Promise.all(Array.from({ length: 50 }, (_, i) => q(i % 2 ? a : b, i)));
      res.forEach((r, i) => expect(r[0]).toEqual({ v: i, s: `s${i}` }));

      // transactions from two data sources are serialised, not interleaved
      await Promise.all(
        [a, b].map((ds, k) =>
          ds.transaction(async (m) => {
            await m.query(`UPDATE gateway.tasks SET current_round = current_round + 1 WHERE id = $1`, [t.id]);
            await new Promise((r) => setTimeout(r, 20 * k));
            await m.query(`UPDATE gateway.tasks SET current_round = current_round + 1 WHERE id = $1`, [t.id]);
          }),
        ),
      );
      expect((await a.getRepository(TaskEntity).findOneByOrFail({ id: t.id })).currentRound).toBe(4);
    } finally {
      await a.destroy().catch(() => undefined);
      await b.destroy().catch(() => undefined);
      await pg.close();
    }
    // eslint-disable-next-line no-console
    console.log(`[measure] PGlite fresh in-memory start: ${createMs} ms`);
  });

  it('on disk: lock file refuses a second server, data survives reopen, stale lock is taken over', async () => {
    const dir = path.join(tmp, 'data');
    let t0 = Date.now();
    const pg1 = await startEmbeddedPostgres({ dataDir: dir });
    const freshMs = Date.now() - t0;
    const lockFile = path.join(dir, EMBEDDED_LOCK_FILE);
    expect(fs.existsSync(lockFile)).toBe(true);
    try {
      await expect(startEmbeddedPostgres({ dataDir: dir })).rejects.toBeInstanceOf(EmbeddedPostgresLockedError);
      await expect(startEmbeddedPostgres({ dataDir: dir })).rejects.toThrow(/already in use/);
      const ds = createDataSource({ url: pg1.url, poolSize: 1 });
      await runMigrations(ds);
      await ds.query(`INSERT INTO coordinator.nodes (name, use_cases) VALUES ('site-a', '{mnist}')`);
      await ds.destroy();
    } finally {
      await pg1.close();
    }
    expect(fs.existsSync(lockFile)).toBe(false);

    // a stale lock left by a dead process is taken over
    fs.writeFileSync(lockFile, JSON.stringify({ pid: 2 ** 22 + 12345, hostname: os.hostname(), token: 'x', startedAt: 'then' }));
    t0 = Date.now();
    const pg2 = await startEmbeddedPostgres({ dataDir: dir });
    const reopenMs = Date.now() - t0;
    try {
      const c = new Client({ connectionString: pg2.url });
      await c.connect();
      const r = await c.query('SELECT name, use_cases FROM coordinator.nodes');
      expect(r.rows).toEqual([{ name: 'site-a', use_cases: ['mnist'] }]);
      await c.end();
    } finally {
      await pg2.close();
    }
    // eslint-disable-next-line no-console
    console.log(`[measure] PGlite fresh on-disk start: ${freshMs} ms; reopen existing folder: ${reopenMs} ms`);
  });

  it('refuses a folder locked by a live process of another pid', async () => {
    const dir = path.join(tmp, 'data2');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, EMBEDDED_LOCK_FILE), JSON.stringify({ pid: process.ppid, hostname: os.hostname(), token: 'y', startedAt: 'now' }));
    await expect(startEmbeddedPostgres({ dataDir: dir })).rejects.toThrow(new RegExp(`pid ${process.ppid}`));
  });
});
