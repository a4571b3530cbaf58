import * as amqplib from 'amqplib';
import { randomBytes } from 'node:crypto';
import { InboundMessage } from './message-bus';
import { RabbitMqBus, RabbitMqBusOptions } from './rabbitmq-bus';
import { RabbitMqManagement, siteAmqpUrl, siteGrant } from './site-access';
import { CapturingLogger, eventually } from './testing/capturing-logger';
import { createTestVhost, TestVhost } from './testing/rabbitmq-test-vhost';

const MANAGEMENT_URL = process.env.FL_TEST_RABBITMQ_MANAGEMENT_URL ?? 'http://guest:guest@127.0.0.1:15672';

/**
 * Per-instance queues expire (RabbitMQ `x-expires`, QUEUE_EXPIRES_S in the apps) once nobody consumes
 * them, on a real RabbitMQ (127.0.0.1:5672 or FL_TEST_RABBITMQ_URL) in a vhost of its own. Queues are
 * looked at through the management API: a passive declare would count as a use and keep them alive.
 */
describe('RabbitMqBus: queues that expire (real RabbitMQ)', () => {
  jest.setTimeout(60_000);
  let vhost: TestVhost;
  let raw: amqplib.ChannelModel;
  const buses: RabbitMqBus[] = [];
  let logger: CapturingLogger;

  const connect = async (options: RabbitMqBusOptions = {}, url = vhost.url) => {
    const bus = await RabbitMqBus.connect(url, { logger, connectionName: 'expiry-spec', ...options });
    buses.push(bus);
    return bus;
  };
  const management = async (method: string, path: string, body?: unknown): Promise<Response> => {
    const u = new URL(MANAGEMENT_URL);
    const auth = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
    return fetch(`${u.protocol}//${u.host}/api${path}`, {
      method,
      headers: { authorization: auth, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
  };
  /** The queue's arguments as the broker keeps them, or null once it is gone. */
  const argumentsOf = async (queue: string): Promise<Record<string, unknown> | null> => {
    const res = await management('GET', `/queues/${encodeURIComponent(vhost.name)}/${encodeURIComponent(queue)}`);
    if (res.status === 404) return null;
    if (!res.ok) throw new Error(`management API: ${res.status} ${await res.text()}`);
    return ((await res.json()) as { arguments: Record<string, unknown> }).arguments;
  };
  const exists = async (queue: string) => (await argumentsOf(queue)) !== null;
  const noop = async () => undefined;

  beforeAll(async () => {
    vhost = await createTestVhost('fl-expiry-spec');
  });
  beforeEach(async () => {
    logger = new CapturingLogger();
    raw = await amqplib.connect(vhost.url);
  });
  afterEach(async () => {
    await Promise.all(buses.splice(0).map((b) => b.close()));
    await raw.close().catch(() => undefined);
  });
  afterAll(async () => {
    await vhost?.dispose();
  });

  it('declares every consumer queue with x-expires beside its dead-letter exchange; the dead-letter queue never expires', async () => {
    const bus = await connect({ queueExpiresMs: 60_000 });
    await bus.consume({ name: 'consumed-q', bindings: ['a'] }, noop);
    await bus.declareQueue({ name: 'declared-q', bindings: ['b'] });
    for (const q of ['consumed-q', 'declared-q']) expect(await argumentsOf(q)).toEqual({ 'x-dead-letter-exchange': 'fl.dead-letter', 'x-expires': 60_000 });
    expect(await argumentsOf('fl.dead-letter')).toEqual({});
    // Without the option (QUEUE_EXPIRES_S=0), as before.
    const plain = await connect();
    await plain.consume({ name: 'plain-q', bindings: ['c'] }, noop);
    expect(await argumentsOf('plain-q')).toEqual({ 'x-dead-letter-exchange': 'fl.dead-letter' });
    expect(logger.lines.filter((l) => l.level !== 'log')).toEqual([]);
  });

  it('a queue nobody consumes any more is deleted after its expiry, with its messages (not dead-lettered); a consumed one stays', async () => {
    const bus = await connect({ queueExpiresMs: 1000 });
    // Declared first: if a consumer did not keep it, it would be gone before the other one.
    const kept = await bus.consume({ name: 'kept-q', bindings: ['kept'] }, noop);
    const left = await bus.consume({ name: 'left-q', bindings: ['left'] }, noop);
    await left.cancel();
    await bus.publish('left', { name: 'n', payload: { stranded: true } });
    await eventually(async () => !(await exists('left-q')), 'left-q deleted by the broker', 15_000);
    expect(await exists('kept-q')).toBe(true);
    expect((await (await raw.createChannel()).checkQueue('fl.dead-letter')).messageCount).toBe(0);
    // The instance goes away for good: its queue follows.
    await kept.cancel();
    await eventually(async () => !(await exists('kept-q')), 'kept-q deleted once its consumer left', 15_000);
  });

  it("uses a site's queue declared without expiry by an earlier release as it is, says once how to apply it, and the remedy works", async () => {
    const grant = siteGrant(`site-${randomBytes(4).toString('hex')}`, { vhost: vhost.name });
    const queue = `fl.worker.${grant.node}`;
    const password = randomBytes(12).toString('hex');
    const admin = new RabbitMqManagement(MANAGEMENT_URL);
    await admin.enrol(grant, password);
    try {
      const platform = await connect({ reconnectTimeInSeconds: 0.2 });
      // As the previous release left it: no x-expires, two messages waiting.
      const legacy = await raw.createChannel();
      await legacy.assertQueue(queue, { durable: true, arguments: { 'x-dead-letter-exchange': 'fl.dead-letter' } });
      await legacy.bindQueue(queue, 'fl.events', `worker.${grant.node}.#`);
      for (const i of [1, 2]) await platform.publish(`worker.${grant.node}.model.package`, { name: 'model.package', payload: { i } });

      // The upgraded worker, as its own broker user, which may configure nothing but its queues.
      const site = await connect(
        { userId: grant.user, topology: 'check', queueExpiresMs: 1000, reconnectTimeInSeconds: 0.2 },
        siteAmqpUrl(vhost.url, grant.user, password),
      );
      const got: InboundMessage[] = [];
      await site.consume({ name: queue, bindings: [`worker.${grant.node}.#`] }, async (m) => void got.push(m));
      await eventually(() => got.length === 2, 'the waiting messages');
      const warnings = () => logger.lines.filter((l) => l.level === 'warn' && l.message.includes(`queue '${queue}'`)).map((l) => l.message);
      expect(warnings()).toHaveLength(1);
      expect(warnings()[0]).toMatch(
        /queue 'fl\.worker\.site-[0-9a-f]+' exists on .* with other arguments than \{"x-dead-letter-exchange":"fl\.dead-letter","x-expires":1000\} \(.*PRECONDITION_FAILED - inequivalent arg 'x-expires'.*\); it is used as it is\. .*delete the queue while its app is stopped .*rabbitmqctl set_policy/,
      );
      expect(await argumentsOf(queue)).toEqual({ 'x-dead-letter-exchange': 'fl.dead-letter' });

      // Every reconnect runs the declaration again: the queue is still used, the warning not repeated.
      await vhost.rabbitmqctl('close_all_connections', '-p', vhost.name, 'expiry-spec: simulated broker failure');
      await eventually(async () => {
        await platform.publish(`worker.${grant.node}.model.package`, { name: 'model.package', payload: { i: 3 } });
        return got.some((m) => m.payload.i === 3);
      }, 'a delivery after the reconnect', 15_000);
      expect(warnings()).toHaveLength(1);
      expect(logger.errors()).toEqual([]);

      // The remedy the warning names: a policy gives the existing queue its expiry, and it goes once its site has gone.
      const policy = await management('PUT', `/policies/${encodeURIComponent(vhost.name)}/fl-queue-expiry`, {
        pattern: '^fl\\.(worker|coordinator|gateway)\\.',
        definition: { expires: 1000 },
        'apply-to': 'queues',
      });
      expect(policy.ok).toBe(true);
      await site.close();
      await eventually(async () => !(await exists(queue)), 'the site queue deleted under the policy', 15_000);
    } finally {
      await admin.revoke(grant.user);
    }
  });
});
