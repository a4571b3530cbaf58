import * as amqplib from 'amqplib';
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { BrokerConnectionError, MessageTooLargeError, RequeueError } from './errors';
import { InboundMessage } from './message-bus';
import { RabbitMqBus, RabbitMqBusOptions } from './rabbitmq-bus';
import { CapturingLogger, eventually } from './testing/capturing-logger';
import { createTestVhost, TestVhost } from './testing/rabbitmq-test-vhost';

/** Talks to a real RabbitMQ (127.0.0.1:5672 or FL_TEST_RABBITMQ_URL) in a vhost of its own. */
describe('RabbitMqBus (real RabbitMQ)', () => {
  jest.setTimeout(30_000);
  let vhost: TestVhost;
  let raw: amqplib.ChannelModel;
  let rawChannel: amqplib.Channel;
  const buses: RabbitMqBus[] = [];
  let logger: CapturingLogger;

  const connect = async (options: RabbitMqBusOptions = {}) => {
    const bus = await RabbitMqBus.connect(vhost.url, { logger, connectionName: 'messaging-spec', ...options });
    buses.push(bus);
    return bus;
  };
  /** Everything in the dead-letter queue right now, read with a plain amqplib channel. */
  const drainDeadLetters = async (): Promise<amqplib.GetMessage[]> => {
    const got: amqplib.GetMessage[] = [];
    for (let m = await rawChannel.get('fl.dead-letter', { noAck: true }); m; m = await rawChannel.get('fl.dead-letter', { noAck: true })) {
      got.push(m);
    }
    return got;
  };
  const waitForDeadLetters = async (count: number): Promise<amqplib.GetMessage[]> => {
    const got: amqplib.GetMessage[] = [];
    await eventually(async () => {
      got.push(...(await drainDeadLetters()));
      return got.length >= count;
    }, `${count} dead letter(s)`);
    return got;
  };

  beforeAll(async () => {
    vhost = await createTestVhost('fl-messaging-spec');
  });
  beforeEach(async () => {
    logger = new CapturingLogger();
    raw = await amqplib.connect(vhost.url);
    rawChannel = await raw.createChannel();
  });
  afterEach(async () => {
    await Promise.all(buses.splice(0).map((b) => b.close()));
    await raw.close().catch(() => undefined); // already closed by the reconnect test
  });
  afterAll(async () => {
    await vhost?.dispose();
  });

  it('publishes and consumes a JSON message with its metadata', async () => {
    const bus = await connect({ userId: 'guest' });
    const got: InboundMessage[] = [];
    await bus.consume({ name: 'json-q', bindings: ['round.*'] }, async (m) => void got.push(m));
    await bus.publish('round.fit', { name: 'round.fit', payload: { task_id: 't1', round: 2 } });
    await eventually(() => got.length === 1, 'delivery');
    expect(got[0]).toEqual({
      name: 'round.fit',
      payload: { task_id: 't1', round: 2 },
      routingKey: 'round.fit',
      redelivered: false,
      userId: 'guest',
      messageId: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
  });

  it('carries a 5 MiB binary attachment byte-exact, with the payload in a header', async () => {
    const bus = await connect();
    const bytes = randomBytes(5 * 1024 * 1024 + 3);
    const got: InboundMessage[] = [];
    await bus.consume({ name: 'binary-q', bindings: ['weights.#'] }, async (m) => void got.push(m));
    await bus.publish('weights.site-a', { name: 'round.fit-result', payload: { round: 1, sha256: 'x' }, attachment: bytes });
    await eventually(() => got.length === 1, 'delivery');
    expect(got[0].payload).toEqual({ round: 1, sha256: 'x' });
    expect(got[0].attachment!.length).toBe(bytes.length);
    expect(got[0].attachment!.equals(bytes)).toBe(true);
  });

  it('declares durable queues and persistent messages: a backlog survives until a consumer attaches', async () => {
    const publisher = await connect();
    await publisher.declareQueue({ name: 'durable-q', bindings: ['task.#'] });
    for (const i of [1, 2, 3]) await publisher.publish('task.submitted', { name: 'task.submitted', payload: { i } });
    await publisher.close();

    const check = await rawChannel.checkQueue('durable-q');
    expect(check.messageCount).toBe(3);
    // Re-declaring with the same arguments succeeds only if the queue is durable with the dead-letter exchange.
    await expect(
      rawChannel.assertQueue('durable-q', { durable: true, arguments: { 'x-dead-letter-exchange': 'fl.dead-letter' } }),
    ).resolves.toMatchObject({ messageCount: 3 });

    const consumer = await connect();
    const got: unknown[] = [];
    await consumer.consume({ name: 'durable-q', bindings: ['task.#'] }, async (m) => void got.push(m.payload.i));
    await eventually(() => got.length === 3, 'backlog');
    expect(got).toEqual([1, 2, 3]);

    // Persistence is a property of each message: peek at one with a plain channel.
    await consumer.publish('task.other', { name: 'task.other', payload: {} });
    await rawChannel.assertQueue('peek-q', { durable: true });
    await rawChannel.bindQueue('peek-q', 'fl.events', 'task.other');
    await consumer.publish('task.other', { name: 'task.other', payload: { peek: true } });
    let peeked: amqplib.GetMessage | false = false;
    await eventually(async () => Boolean((peeked = await rawChannel.get('peek-q', { noAck: true }))), 'peek');
    expect((peeked as unknown as amqplib.GetMessage).properties).toMatchObject({
      deliveryMode: 2,
      type: 'task.other',
      contentType: 'application/json',
    });
  });

  it('dead-letters a message whose handler throws, logging its name and routing key', async () => {
    const bus = await connect();
    await bus.consume({ name: 'failing-q', bindings: ['round.fit'] }, async () => {
      throw new Error('cannot fit');
    });
    await bus.publish('round.fit', { name: 'round.fit', payload: { task_id: 't9' } });
    const [dead] = await waitForDeadLetters(1);
    expect(dead.properties.type).toBe('round.fit');
    expect(JSON.parse(dead.content.toString())).toEqual({ task_id: 't9' });
    expect(dead.properties.headers?.['x-death']?.[0]).toMatchObject({ queue: 'failing-q', reason: 'rejected' });
    await eventually(() => logger.errors().length > 0, 'error log');
    expect(logger.errors()[0]).toMatch(/'round\.fit'.*routing key 'round\.fit'.*failing-q.*cannot fit/);
  });

  it('requeues once on RequeueError, then dead-letters', async () => {
    const bus = await connect();
    const seen: boolean[] = [];
    await bus.consume({ name: 'requeue-q', bindings: ['a'] }, async (m) => {
      seen.push(m.redelivered);
      throw new RequeueError('not yet');
    });
    await bus.publish('a', { name: 'x', payload: {} });
    const [dead] = await waitForDeadLetters(1);
    expect(seen).toEqual([false, true]);
    expect(dead.properties.type).toBe('x');
  });

  it('dead-letters messages it cannot decode (bad JSON, missing type)', async () => {
    const bus = await connect();
    const handled: unknown[] = [];
    await bus.consume({ name: 'decode-q', bindings: ['junk'] }, async (m) => void handled.push(m));
    rawChannel.publish('fl.events', 'junk', Buffer.from('{not json'), { type: 'x', contentType: 'application/json', messageId: 'm1' });
    rawChannel.publish('fl.events', 'junk', Buffer.from('{}'), { contentType: 'application/json', messageId: 'm2' });
    const dead = await waitForDeadLetters(2);
    expect(dead.map((d) => d.properties.messageId).sort()).toEqual(['m1', 'm2']);
    expect(handled).toEqual([]);
    expect(logger.errors().join('\n')).toMatch(/not JSON[\s\S]*missing message name/);
  });

  it('keeps the order of messages from one publisher to one queue', async () => {
    const bus = await connect();
    const got: number[] = [];
    await bus.consume({ name: 'order-q', bindings: ['seq'] }, async (m) => void got.push(m.payload.i as number));
    const n = 300;
    await Promise.all(Array.from({ length: n }, (_, i) => bus.publish('seq', { name: 'seq', payload: { i } })));
    await eventually(() => got.length === n, `${n} deliveries`);
    expect(got).toEqual(Array.from({ length: n }, (_, i) => i));
  });

  it('runs at most prefetch handler calls at once', async () => {
    const bus = await connect();
    let running = 0;
    let maxRunning = 0;
    let done = 0;
    await bus.consume({ name: 'prefetch-q', bindings: ['p'], prefetch: 3 }, async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await new Promise((r) => setTimeout(r, 20));
      running--;
      done++;
    });
    await Promise.all(Array.from({ length: 12 }, () => bus.publish('p', { name: 'p', payload: {} })));
    await eventually(() => done === 12, 'twelve handler calls');
    expect(maxRunning).toBe(3);
  });

  it('turns Nagle off (TCP_NODELAY) on the broker socket', async () => {
    const setNoDelay = jest.spyOn(net.Socket.prototype, 'setNoDelay');
    try {
      const bus = await connect();
      const socket = (bus as unknown as { manager: { connection: { connection: { stream: net.Socket } } } }).manager.connection
        .connection.stream;
      expect(socket).toBeInstanceOf(net.Socket);
      const callsOnSocket = setNoDelay.mock.contexts
        .map((ctx, i) => [ctx, setNoDelay.mock.calls[i][0]] as const)
        .filter(([ctx]) => ctx === socket);
      expect(callsOnSocket).toEqual([[socket, true]]);
      // Node records the applied option on the socket (the symbol is Node's own bookkeeping).
      const kSetNoDelay = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'kSetNoDelay');
      expect(kSetNoDelay && (socket as unknown as Record<symbol, unknown>)[kSetNoDelay]).toBe(true);
    } finally {
      setNoDelay.mockRestore();
    }
  });

  it('fails to connect to a closed port with a clear error, naming the host but not the password', async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    await new Promise<void>((r) => server.close(() => r()));

    const attempt = RabbitMqBus.connect(`amqp://guest:s3cret-pw@127.0.0.1:${port}/x`, { connectTimeoutMs: 1000, logger });
    const error = await attempt.then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error).toBeInstanceOf(BrokerConnectionError);
    expect(error!.message).toContain(`amqp://guest@127.0.0.1:${port}/x`);
    expect(error!.message).toMatch(/within 1000 ms: .*ECONNREFUSED/);
    expect(error!.message).not.toContain('s3cret-pw');
  });

  it('fails at once when the broker refuses the credentials', async () => {
    const url = vhost.url.replace('guest:guest', 'guest:wrong-pw');
    await expect(RabbitMqBus.connect(url, { connectTimeoutMs: 5000, logger })).rejects.toThrow(/ACCESS.REFUSED/);
  });

  it('refuses a message above the size limit before publishing', async () => {
    const bus = await connect({ maxMessageBytes: 1000 });
    await expect(bus.publish('a', { name: 'big', payload: {}, attachment: Buffer.alloc(1001) })).rejects.toThrow(MessageTooLargeError);
  });

  it('reconnects after the broker drops the connection, re-declares the consumer and delivers what was published meanwhile', async () => {
    const bus = await connect({ reconnectTimeInSeconds: 0.2 });
    const got: unknown[] = [];
    await bus.consume({ name: 'reconnect-q', bindings: ['r'] }, async (m) => void got.push(m.payload.i));
    await bus.publish('r', { name: 'r', payload: { i: 1 } });
    await eventually(() => got.length === 1, 'first delivery');

    await vhost.rabbitmqctl('close_all_connections', '-p', vhost.name, 'messaging-spec: simulated broker failure');
    await eventually(() => logger.lines.some((l) => l.message.includes('disconnected from')), 'disconnect');
    await bus.publish('r', { name: 'r', payload: { i: 2 } });
    await eventually(() => got.length === 2, 'delivery after reconnect', 10_000);
    expect(got).toEqual([1, 2]);
  });

  it('adds a binding to a consumed queue; one the broker refuses rejects and leaves the consumer and the publisher running', async () => {
    const user = `bind-spec-${randomBytes(4).toString('hex')}`;
    await vhost.rabbitmqctl('add_user', user, 'pw');
    try {
      await vhost.rabbitmqctl('set_permissions', '-p', vhost.name, user, '.*', '.*', '.*');
      await vhost.rabbitmqctl('set_topic_permissions', '-p', vhost.name, user, 'fl.events', '.*', '^(first|allowed\\..*)$');
      const bus = await connect({ reconnectTimeInSeconds: 0.2 });
      const limited = await RabbitMqBus.connect(vhost.url.replace('guest:guest@', `${user}:pw@`), { logger, connectionName: 'messaging-spec-limited' });
      buses.push(limited);
      const got: string[] = [];
      await limited.consume({ name: 'bind-q', bindings: ['first'] }, async (m) => void got.push(m.routingKey));
      await limited.addBinding('bind-q', 'allowed.#');
      await limited.addBinding('bind-q', 'allowed.#'); // again: no second binding, no error
      await expect(limited.addBinding('bind-q', 'secret.#')).rejects.toThrow(/binding queue 'bind-q' to 'secret.#' on .* failed: .*ACCESS_REFUSED/);
      for (const key of ['first', 'allowed.x', 'secret.x']) await bus.publish(key, { name: 'n', payload: {} });
      await limited.publish('first', { name: 'n', payload: {} });
      await eventually(() => got.length === 3, 'deliveries');
      expect(got).toEqual(['first', 'allowed.x', 'first']);
      // the binding is the consumer's from now on: lost on the broker, it is declared again after a reconnect
      await rawChannel.unbindQueue('bind-q', 'fl.events', 'allowed.#');
      await vhost.rabbitmqctl('close_all_connections', '-p', vhost.name, 'messaging-spec: simulated broker failure');
      await eventually(async () => {
        await bus.publish('allowed.y', { name: 'n', payload: {} });
        return got.includes('allowed.y');
      }, 'delivery through the binding declared again', 10_000);
    } finally {
      await vhost.rabbitmqctl('delete_user', user);
    }
  });

  it('lets RabbitMQ reject a user_id that is not the connection user, then recovers the publisher', async () => {
    const impostor = await connect({ userId: 'site-that-is-not-guest', reconnectTimeInSeconds: 0.2 });
    await expect(impostor.publish('a', { name: 'x', payload: {} })).rejects.toThrow(
      /publishing 'x' to 'a' on amqp:\/\/guest@127\.0\.0\.1:5672\/fl-messaging-spec-\w+ failed: .*PRECONDITION_FAILED.*user_id/,
    );
    // The channel the broker closed comes back after a forced reconnect (publish waits for it).
    const other = await connect();
    const got: unknown[] = [];
    await other.consume({ name: 'user-id-q', bindings: ['u'] }, async (m) => void got.push(m.userId));
    const honest = await connect({ userId: 'guest' });
    await honest.publish('u', { name: 'u', payload: {} });
    await eventually(() => got.length === 1, 'delivery');
    expect(got).toEqual(['guest']);
    await expect(impostor.publish('u', { name: 'u', payload: {} })).rejects.toThrow(/user_id/);
  });

  it('close waits for handler calls in flight', async () => {
    const bus = await connect();
    let started = false;
    let finished = false;
    await bus.consume({ name: 'close-q', bindings: ['c'] }, async () => {
      started = true;
      await new Promise((r) => setTimeout(r, 100));
      finished = true;
    });
    await bus.publish('c', { name: 'c', payload: {} });
    await eventually(() => started, 'handler start');
    await bus.close();
    expect(finished).toBe(true);
    expect((await rawChannel.checkQueue('close-q')).messageCount).toBe(0);
  });
});
