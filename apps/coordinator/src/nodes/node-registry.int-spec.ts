import { DataSource } from 'typeorm';
import { NodePresencePayload } from '@fl/contracts';
import { createDataSource, runMigrations } from '@fl/persistence';
import { createTestDatabase } from '../../../../libs/persistence/src/testing';
import { CoordinatorConfig } from '../config';
import { EdgeWorkerRegistry, ONLINE_REUSE_MS } from './node-registry.service';

/** Presence on a real PostgreSQL: who joined, who was there already, and two coordinators hearing the same site at once. */
describe('EdgeWorkerRegistry presence (PostgreSQL)', () => {
  let db: { url: string; drop(): Promise<void> };
  let ds: DataSource;
  let other: DataSource;
  let registry: EdgeWorkerRegistry;
  let second: EdgeWorkerRegistry;
  const config = { NODE_ONLINE_WINDOW_S: 30 } as CoordinatorConfig;

  const presence = (sender: string, train = 40): NodePresencePayload => ({
    task_id: 0, round: 0, sender, use_cases: ['iris'], examples: { iris: { train, test: 10 } },
  }) as unknown as NodePresencePayload;
  const row = async (name: string) =>
    (await ds.query(`SELECT status, examples FROM coordinator.nodes WHERE name = $1`, [name]))[0] as { status: string; examples: Record<string, unknown> } | undefined;

  beforeAll(async () => {
    db = await createTestDatabase('fl_presence');
    ds = createDataSource({ url: db.url, poolSize: 4 });
    await ds.initialize();
    await runMigrations(ds);
    other = createDataSource({ url: db.url, poolSize: 4 });
    await other.initialize();
    registry = new EdgeWorkerRegistry(ds, config);
    second = new EdgeWorkerRegistry(other, config);
  });

  afterAll(async () => {
    await other?.destroy();
    await ds?.destroy();
    await db?.drop();
  });

  it('a first heartbeat joins; the next ones are presence and update what the site reports', async () => {
    expect(await registry.recordPresence(presence('site-a'), 'heartbeat')).toBe('joined');
    expect(await row('site-a')).toEqual({ status: 'online', examples: { iris: { train: 40, test: 10 } } });
    expect(await registry.recordPresence(presence('site-a', 55), 'heartbeat')).toBe('present');
    expect((await row('site-a'))?.examples).toEqual({ iris: { train: 55, test: 10 } });
    expect((await registry.online('iris')).map((n) => [n.name, n.train])).toEqual([['site-a', 55]]);
  });

  it('a heartbeat of a site that left joins it again; a revoked site stays revoked', async () => {
    await registry.recordLeaving('site-a');
    expect((await row('site-a'))?.status).toBe('offline');
    expect(await registry.recordPresence(presence('site-a'), 'heartbeat')).toBe('joined');
    await registry.recordRevoked('site-a');
    expect(await registry.recordPresence(presence('site-a'), 'heartbeat')).toBe('revoked');
    expect((await row('site-a'))?.status).toBe('revoked');
  });

  it('two coordinators hearing the same site at once agree that one of them saw it join', async () => {
    for (let i = 0; i < 10; i++) {
      const name = `site-race-${i}`;
      await registry.recordPresence(presence(name), 'heartbeat');
      await registry.recordLeaving(name);
      const seen = await Promise.all([registry.recordPresence(presence(name), 'heartbeat'), second.recordPresence(presence(name), 'heartbeat')]);
      expect(seen.sort()).toEqual(['joined', 'present']);
    }
  });

  it('reuses the online workers of a use case for ONLINE_REUSE_MS, and reads them again at once after a presence change it records', async () => {
    let clock = 0;
    registry.now = () => clock;
    const wine = (sender: string): NodePresencePayload => ({ ...presence(sender), use_cases: ['wine'], examples: { wine: { train: 20, test: 5 } } }) as NodePresencePayload;
    const onlineWine = async () => (await registry.online('wine')).map((n) => n.name);
    await registry.recordPresence(wine('wine-1'), 'registration');
    await registry.recordPresence(wine('wine-2'), 'registration');
    expect(await onlineWine()).toEqual(['wine-1', 'wine-2']);
    // A change this coordinator did not record (another process's write): the list read just now is reused.
    await ds.query(`UPDATE coordinator.nodes SET status = 'offline' WHERE name = 'wine-2'`);
    clock += ONLINE_REUSE_MS - 1;
    expect(await onlineWine()).toEqual(['wine-1', 'wine-2']);
    // Not for longer.
    clock += 1;
    expect(await onlineWine()).toEqual(['wine-1']);
    // A goodbye, a revocation or a registration recorded here: read again at once.
    await registry.recordLeaving('wine-1');
    expect(await onlineWine()).toEqual([]);
    await registry.recordPresence(wine('wine-1'), 'registration');
    expect(await onlineWine()).toEqual(['wine-1']);
    await registry.recordRevoked('wine-1');
    expect(await onlineWine()).toEqual([]);
    // What a caller does with the list it got does not change the list reused.
    await registry.recordPresence(wine('wine-3'), 'registration');
    (await registry.online('wine'))[0].train = 0;
    expect((await registry.online('wine')).map((n) => [n.name, n.train])).toEqual([['wine-3', 20]]);
  });

  it('keeps the list through heartbeats that change nothing in it, and forgets it at one that does', async () => {
    let clock = 0;
    registry.now = () => clock;
    const beer = (sender: string, train = 20, useCases = ['beer']): NodePresencePayload =>
      ({ ...presence(sender), use_cases: useCases, examples: Object.fromEntries(useCases.map((u) => [u, { train, test: train ? 5 : 0 }])) }) as NodePresencePayload;
    const onlineBeer = async () => (await registry.online('beer')).map((n) => `${n.name} ${n.train}`);
    await registry.recordPresence(beer('beer-1'), 'registration');
    await registry.recordPresence(beer('beer-2'), 'registration');
    await registry.recordPresence(beer('beer-3', 0), 'registration');
    await registry.recordPresence(beer('ale-1', 20, ['ale']), 'registration');
    expect(await onlineBeer()).toEqual(['beer-1 20', 'beer-2 20']);
    expect((await registry.online('ale')).map((n) => n.name)).toEqual(['ale-1']);
    // Another process's write shows whether the list is read again.
    await ds.query(`UPDATE coordinator.nodes SET status = 'offline' WHERE name = 'beer-2'`);
    // The same examples again; a site without data for it; another use case's site: the list holds.
    await registry.recordPresence(beer('beer-1'), 'heartbeat');
    await registry.recordPresence(beer('beer-3', 0), 'heartbeat');
    await registry.recordPresence(beer('ale-1', 20, ['ale']), 'heartbeat');
    expect(await onlineBeer()).toEqual(['beer-1 20', 'beer-2 20']);
    // New examples: read again.
    await registry.recordPresence(beer('beer-1', 30), 'heartbeat');
    expect(await onlineBeer()).toEqual(['beer-1 30']);
    // A site with data it did not have: read again.
    await ds.query(`UPDATE coordinator.nodes SET status = 'online' WHERE name = 'beer-2'`);
    await registry.recordPresence(beer('beer-3', 15), 'heartbeat');
    expect(await onlineBeer()).toEqual(['beer-1 30', 'beer-2 20', 'beer-3 15']);
    // A site that no longer serves the use case: read again.
    await ds.query(`UPDATE coordinator.nodes SET status = 'offline' WHERE name = 'beer-2'`);
    await registry.recordPresence(beer('beer-3', 15, ['ale']), 'heartbeat');
    expect(await onlineBeer()).toEqual(['beer-1 30']);
  });
});
