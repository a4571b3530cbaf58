import { DataSource } from 'typeorm';
import { createDataSource, runMigrations, ensureDatabase, ALL_MIGRATIONS, MIGRATIONS_TABLE } from './data-source';
import { createTestDatabase } from './testing';
import {
  CheckpointEntity,
  NodeEntity,
  RoundEntity,
  RoundParticipantEntity,
  TaskEntity,
  TaskEventEntity,
  TaskRunEntity,
} from './entities';

jest.setTimeout(60_000);

describe('persistence against real PostgreSQL', () => {
  let db: { url: string; name: string; drop(): Promise<void> };
  const sources: DataSource[] = [];
  const make = (poolSize = 4) => {
    const ds = createDataSource({ url: db.url, poolSize, applicationName: 'persistence-spec' });
    sources.push(ds);
    return ds;
  };

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    for (const ds of sources) if (ds.isInitialized) await ds.destroy();
    await db?.drop();
  });

  it('ensureDatabase is idempotent', async () => {
    expect(await ensureDatabase(db.url)).toBe(false);
  });

  it('concurrent runMigrations from two data sources: one applies, the other no-ops', async () => {
    const [a, b] = [make(), make()];
    const results = await Promise.all([runMigrations(a), runMigrations(b)]);
    const applied = results.flat();
    expect(applied).toEqual(ALL_MIGRATIONS.map((m) => m.name));
    const rows = await a.query(`SELECT name FROM ${MIGRATIONS_TABLE}`);
    expect(rows).toHaveLength(ALL_MIGRATIONS.length);
  });

  it('running migrations again is a no-op', async () => {
    const ds = make();
    expect(await runMigrations(ds)).toEqual([]);
    expect(await runMigrations(ds)).toEqual([]);
  });

  it('maps gateway entities, enum status, jsonb, and dedups events', async () => {
    const ds = sources[0];
    const repo = ds.getRepository(TaskEntity);
    const t = await repo.save(
      repo.create({
        userId: 'alice',
        useCase: 'mnist',
        modelName: 'mlp',
        modelVersion: 1,
        numGlobalIterations: 3,
        settings: { fraction_fit: 0.5 },
      }),
    );
    const got = await repo.findOneByOrFail({ id: t.id });
    expect(got.status).toBe('pending');
    expect(got.settings).toEqual({ fraction_fit: 0.5 });
    expect(got.createdAt).toBeInstanceOf(Date);
    expect(got.currentRound).toBe(0);

    await expect(ds.query(`UPDATE gateway.tasks SET status = 'bogus' WHERE id = $1`, [t.id])).rejects.toThrow();

    const ev = ds.getRepository(TaskEventEntity);
    const insert = (round: number | null) =>
      ds.createQueryBuilder().insert().into(TaskEventEntity).values({ taskId: t.id, type: 'round.completed', round, payload: { round } as any }).orIgnore().execute();
    await insert(1);
    await insert(1);
    await insert(null);
    await insert(null);
    const events = await ev.find({ where: { taskId: t.id } });
    expect(events).toHaveLength(2);
    expect(typeof events[0].id).toBe('string'); // bigserial -> string (documented)

    await repo.delete({ id: t.id });
    expect(await ev.count({ where: { taskId: t.id } })).toBe(0); // cascade
  });

  it('maps coordinator entities: arrays, bytea, doubles, composite keys', async () => {
    const ds = sources[0];
    await ds.getRepository(TaskRunEntity).save({ taskId: 7, spec: { rounds: 3 } });
    const run = await ds.getRepository(TaskRunEntity).findOneByOrFail({ taskId: 7 });
    expect(run.state).toBe('queued');
    expect(run.cancelRequested).toBe(false);

    await ds.getRepository(NodeEntity).save({ name: 'site-a', useCases: ['mnist', 'heart'], examples: { mnist: { train: 10, test: 2 } } });
    const node = await ds.getRepository(NodeEntity).findOneByOrFail({ name: 'site-a' });
    expect(node.useCases).toEqual(['mnist', 'heart']);
    expect(node.status).toBe('online');

    await ds.getRepository(RoundEntity).save({ taskId: 7, round: 1, status: 'completed', participants: 2, examples: 20, trainLoss: 0.125, evalAccuracy: 0.5 });
    const r = await ds.getRepository(RoundEntity).findOneByOrFail({ taskId: 7, round: 1 });
    expect(r.trainLoss).toBe(0.125);
    expect(r.evalLoss).toBeNull();

    await ds.getRepository(RoundParticipantEntity).save({ taskId: 7, round: 1, nodeName: 'site-a', phase: 'fit', status: 'received', examples: 10, loss: 0.25 });
    expect(await ds.getRepository(RoundParticipantEntity).countBy({ taskId: 7 })).toBe(1);

    const weights = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 256));
    await ds.getRepository(CheckpointEntity).save({ taskId: 7, round: 1, weights, sha256: 'x' });
    const cp = await ds.getRepository(CheckpointEntity).findOneByOrFail({ taskId: 7, round: 1 });
    expect(Buffer.isBuffer(cp.weights)).toBe(true);
    expect(cp.weights.equals(weights)).toBe(true);
  });

  it('FOR UPDATE SKIP LOCKED claims a lease exactly once', async () => {
    const ds = sources[0];
    await ds.getRepository(TaskRunEntity).save({ taskId: 8, spec: {} });
    const claim = (owner: string) =>
      ds.transaction(async (m) => {
        const rows = await m.query(
          `SELECT task_id FROM coordinator.task_runs WHERE task_id = 8 AND state = 'queued' FOR UPDATE SKIP LOCKED`,
        );
        if (!rows.length) return false;
        await new Promise((r) => setTimeout(r, 50));
        await m.query(`UPDATE coordinator.task_runs SET state='running', owner=$1 WHERE task_id = 8`, [owner]);
        return true;
      });
    const res = await Promise.all([claim('c1'), claim('c2')]);
    expect(res.filter(Boolean)).toHaveLength(1);
  });

  it('migration down then up works', async () => {
    const ds = make(1);
    await ds.initialize();
    for (let i = 0; i < ALL_MIGRATIONS.length; i++) await ds.undoLastMigration({ transaction: 'all' });
    const schemas = await ds.query(`SELECT nspname FROM pg_namespace WHERE nspname IN ('gateway','coordinator','registry')`);
    expect(schemas).toHaveLength(0);
    expect(await runMigrations(ds)).toHaveLength(ALL_MIGRATIONS.length);
  });
});
