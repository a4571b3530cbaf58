import fc from 'fast-check';
import { Client } from 'pg';
import { Msg, MsgName, Routes } from '@fl/contracts';
import { RabbitMqBus } from '@fl/messaging';
import { Platform } from './support/platform';

/**
 * Property-based fuzzing of every REST endpoint and every message handler of
 * the gateway, the coordinator and an edge worker: at least 1,000 generated
 * bad inputs each.
 * Goal: no 5xx, no crashed consumer, no row changed by a refused input.
 */
describe('fuzzing the gateway, the coordinator and an edge worker with bad inputs', () => {
  const platform = new Platform();
  const RUNS = 1000;
  /** Names every object has, and `prototype`: keys that libraries drop rather than refuse. */
  const PROTOTYPE_KEYS = ['prototype', ...Object.getOwnPropertyNames(Object.prototype)];
  let bus: RabbitMqBus;

  beforeAll(async () => {
    await platform.provision();
    await platform.startGateway({ RATE_LIMIT_PER_MINUTE: '1000000', LOG_LEVEL: 'error' });
    await platform.startCoordinators(1, { LOG_LEVEL: 'error' });
    await platform.startSites(1);
    await platform.sitesOnline(1);
    await platform.cli('models', 'publish', 'iris');
    bus = await RabbitMqBus.connect(platform.amqpUrl, { connectionName: 'fuzzer' });
  }, 120_000);

  afterAll(async () => {
    await bus?.close();
    const ended = await platform.stop();
    // The apps were still alive to be stopped: nothing crashed.
    expect(ended).toEqual({ gateway: 'SIGTERM', 'coordinator-1': 'SIGTERM', 'site-1': 'SIGTERM' });
  }, 60_000);

  async function rowCounts(): Promise<Record<string, number>> {
    const c = new Client({ connectionString: platform.databaseUrl });
    await c.connect();
    try {
      const tables = ['gateway.tasks', 'gateway.task_events', 'gateway.api_keys', 'gateway.audit_events', 'coordinator.task_runs', 'coordinator.nodes', 'coordinator.rounds', 'coordinator.deleted_tasks', 'registry.model_versions'];
      const counts: Record<string, number> = {};
      for (const t of tables) counts[t] = Number((await c.query(`SELECT count(*) AS n FROM ${t}`)).rows[0].n);
      return counts;
    } finally {
      await c.end();
    }
  }

  const valid = { user_id: 'e2e-admin', use_case: 'iris', model_name: 'iris', model_version: 1, num_global_iterations: 1, run_name: 'r', experiment_name: 'e' };
  const nonString = fc.oneof(fc.constant(null), fc.boolean(), fc.integer(), fc.double(), fc.array(fc.string(), { maxLength: 2 }), fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 2 }));
  const nonInteger = fc.oneof(fc.constant(null), fc.boolean(), fc.double().filter((d) => !Number.isInteger(d)), fc.string(), fc.constant('1'), fc.array(fc.integer(), { maxLength: 2 }));
  const tooLong = (n: number) => fc.string({ minLength: n + 1, maxLength: n + 50 });
  /** For each field, values that field must refuse: wrong type, out of range, unknown to the system. */
  const badValue: Record<keyof typeof valid, fc.Arbitrary<unknown>> = {
    user_id: fc.oneof(nonString, fc.constant(''), tooLong(200)),
    use_case: fc.oneof(nonString, fc.constantFrom('', 'iris.v2', 'a b', '../x', 'no_such_use_case', "'; DROP TABLE gateway.tasks; --")),
    model_name: fc.oneof(nonString, fc.constantFrom('', 'x\u0000', 'no-such-model', '../../etc/passwd', "'; DROP TABLE registry.model_versions; --"), tooLong(256)),
    model_version: fc.oneof(nonInteger, fc.integer({ max: 0 }), fc.integer({ min: 2, max: 2147483647 })),
    num_global_iterations: fc.oneof(nonInteger, fc.integer({ max: 0 }), fc.integer({ min: 10001 })),
    run_name: fc.oneof(nonString, tooLong(200)),
    experiment_name: fc.oneof(nonString, tooLong(200)),
  };
  const field = fc.constantFrom(...(Object.keys(valid) as (keyof typeof valid)[]));
  /** A predecessor body with one field made bad, one missing, or an unknown field added; or not an object at all. */
  const badTaskBody = fc.oneof(
    field.chain((f) => badValue[f].map((v) => ({ ...valid, [f]: v }))),
    field.map((f) => Object.fromEntries(Object.entries(valid).filter(([k]) => k !== f))),
    // Any unknown key, the prototype keys too (a computed key makes an own property, as JSON.parse does): Nest's pipe or class-transformer would drop those silently.
    fc.record({ key: fc.oneof(fc.string({ minLength: 1, maxLength: 12 }), fc.constantFrom(...PROTOTYPE_KEYS)).filter((k) => !Object.hasOwn(valid, k)), value: fc.jsonValue() }).map(({ key, value }) => ({ ...valid, [key]: value })),
    fc.oneof(fc.constant(null), fc.integer(), fc.string(), fc.array(fc.jsonValue(), { maxLength: 3 })),
  );
  const badSegment = fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('0', '-1', '1.5', '99999999999', 'NaN', '%00', '..', '1e3'), fc.integer({ min: 100000, max: 2147483647 }).map(String));

  it('POST /tasks: 1,000 bad bodies, each refused with a 4xx, nothing stored', async () => {
    const before = await rowCounts();
    await fc.assert(
      fc.asyncProperty(badTaskBody, async (body) => {
        const res = await platform.fetch('POST', '/tasks', body);
        return res.status >= 400 && res.status < 500;
      }),
      // The prototype keys, each tried first whatever the seed (runs once found 'prototype' and 'valueOf' accepted).
      { numRuns: RUNS, examples: PROTOTYPE_KEYS.map((key) => [{ ...valid, [key]: {} }] as [typeof valid]) },
    );
    expect(await rowCounts()).toEqual(before);
  });

  it('every path with an id or a name: 1,000 bad segments each, never a 5xx, nothing changed', async () => {
    const before = await rowCounts();
    const routes: [string, (seg: string) => string][] = [
      ['GET', (s) => `/tasks/${encodeURIComponent(s)}`],
      ['GET', (s) => `/tasks/${encodeURIComponent(s)}/rounds`],
      ['PUT', (s) => `/tasks/cancel/${encodeURIComponent(s)}`],
      ['GET', (s) => `/tasks/user/${encodeURIComponent(s)}`],
      ['GET', (s) => `/models/${encodeURIComponent(s)}/versions`],
      ['GET', (s) => `/models/iris/versions/${encodeURIComponent(s)}`],
      ['DELETE', (s) => `/api-keys/${encodeURIComponent(s)}`],
      ['GET', (s) => `/audit?limit=${encodeURIComponent(s)}`],
    ];
    for (const [method, path] of routes) {
      await fc.assert(
        fc.asyncProperty(badSegment, async (seg) => {
          const res = await platform.fetch(method, path(seg));
          return res.status < 500;
        }),
        { numRuns: RUNS },
      );
      expect({ route: `${method} ${path(':x')}`, rows: await rowCounts() }).toEqual({ route: `${method} ${path(':x')}`, rows: before });
    }
  });

  it('POST /api-keys: 1,000 bad bodies refused, no key created', async () => {
    const before = await rowCounts();
    const good = { name: 'k', subject: 's', role: 'viewer' };
    const bad = fc.oneof(
      fc.oneof(nonString, fc.constant(''), tooLong(100)).map((name) => ({ ...good, name })),
      fc.oneof(nonString, fc.constant(''), fc.constant('a\u0007b'), tooLong(200)).map((subject) => ({ ...good, subject })),
      fc.oneof(nonString, fc.string().filter((r) => !['admin', 'scientist', 'viewer'].includes(r))).map((role) => ({ ...good, role })),
      fc.oneof(fc.constant(null), fc.integer(), fc.string(), fc.array(fc.jsonValue(), { maxLength: 3 })),
    );
    await fc.assert(fc.asyncProperty(bad, async (body) => (await platform.fetch('POST', '/api-keys', body)).status === 400), { numRuns: RUNS });
    expect(await rowCounts()).toEqual(before);
  });

  it('every message handler of the gateway, the coordinator and an edge worker: 1,000 malformed messages each are dead-lettered, consumers keep running, nothing changed', async () => {
    const before = await rowCounts();
    const toGateway: MsgName[] = [Msg.TaskStarted, Msg.TaskSucceeded, Msg.TaskFailed, Msg.TaskCancelled, Msg.RoundCompleted, Msg.RoundsCompleted];
    const toCoordinator: MsgName[] = [
      Msg.TaskSubmitted, Msg.TaskCancelRequested, Msg.TasksDeleted, Msg.NodeRegistered, Msg.NodeHeartbeat, Msg.NodeLeaving, Msg.NodeRevoked, Msg.RoundFitResult, Msg.RoundEvaluateResult,
      Msg.RoundStatsResult,
    ];
    const toWorker: MsgName[] = [Msg.ModelPackage, Msg.RoundFit, Msg.RoundEvaluate, Msg.RoundStats, Msg.PresenceRequested, Msg.UseCaseDefined];
    // Every envelope is broken in at least one field, so every handler must refuse every message.
    const badSender = fc.oneof(nonString, fc.constantFrom('bad.name', '', 'a b', 'x'.repeat(100), '../../x'));
    const payload = fc.record(
      { task_id: fc.oneof(fc.integer({ min: 0, max: 1000 }), nonInteger), round: fc.oneof(fc.integer({ min: 0, max: 10 }), nonInteger), sender: badSender, extra: fc.jsonValue() },
      { requiredKeys: ['sender'] },
    );
    const targets = [
      ...toGateway.map((m) => ({ name: m, key: Routes.gateway(m) })),
      ...toCoordinator.map((m) => ({ name: m, key: Routes.allCoordinators(m) })),
      ...toWorker.map((m) => ({ name: m, key: Routes.worker('site-1', m) })),
    ];
    for (const t of targets) {
      await fc.assert(
        fc.asyncProperty(payload, async (p) => {
          await bus.publish(t.key, { name: t.name, payload: p as Record<string, unknown> });
          return true;
        }),
        { numRuns: RUNS },
      );
    }
    // Every one of them reaches the dead-letter queue: refused, recorded, none silently dropped.
    const expected = RUNS * targets.length;
    await platform.until(`${expected} messages are dead-lettered`, async () => (await deadLetters()) >= expected, 240_000, 500);
    expect((await platform.fetch('GET', '/health/ready')).status).toBe(200);
    for (const app of ['coordinator-1', 'site-1']) {
      expect([app, (await fetch(`http://127.0.0.1:${platform.healthPorts[app]}/health/ready`)).status]).toEqual([app, 200]);
    }
    expect(await rowCounts()).toEqual(before);
  }, 300_000);

  async function deadLetters(): Promise<number> {
    const out = await platform.rabbitmqctl('list_queues', '-p', platform.vhostName, 'name', 'messages');
    const line = out.split('\n').find((l) => l.startsWith('fl.dead-letter\t'));
    return line ? Number(line.split('\t')[1]) : 0;
  }
});
