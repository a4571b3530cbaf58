import { randomBytes } from 'node:crypto';
import { MessageTooLargeError, RequeueError } from './errors';
import { InMemoryBus } from './in-memory-bus';
import { InboundMessage } from './message-bus';
import { CapturingLogger, eventually } from './testing/capturing-logger';

describe('InMemoryBus', () => {
  let logger: CapturingLogger;
  let bus: InMemoryBus;

  beforeEach(() => {
    logger = new CapturingLogger();
    bus = new InMemoryBus({ logger, userId: 'site-a' });
  });
  afterEach(() => bus.close());

  it('routes by topic pattern and keeps FIFO order per queue', async () => {
    const fits: string[] = [];
    const all: string[] = [];
    await bus.consume({ name: 'worker', bindings: ['round.fit'] }, async (m) => void fits.push(String(m.payload.i)));
    await bus.consume({ name: 'audit', bindings: ['#'] }, async (m) => void all.push(`${m.routingKey}:${m.payload.i}`));
    for (let i = 0; i < 20; i++) {
      await bus.publish(i % 2 ? 'round.fit' : 'round.evaluate', { name: 'round.fit', payload: { i } });
    }
    await eventually(() => all.length === 20, 'all deliveries');
    expect(fits).toEqual(['1', '3', '5', '7', '9', '11', '13', '15', '17', '19']);
    expect(all.map((s) => s.split(':')[1])).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
  });

  it('delivers asynchronously, never inside publish', async () => {
    let delivered = false;
    await bus.consume({ name: 'q', bindings: ['a'] }, async () => {
      delivered = true;
    });
    await bus.publish('a', { name: 'x', payload: {} });
    expect(delivered).toBe(false);
    await eventually(() => delivered, 'delivery');
  });

  it('passes the payload through JSON and fills the delivery fields', async () => {
    const got: InboundMessage[] = [];
    await bus.consume({ name: 'q', bindings: ['round.*'] }, async (m) => void got.push(m));
    const payload = { task_id: 't1', when: new Date(0), skip: undefined, nested: { a: [1, 2] } };
    await bus.publish('round.fit', { name: 'round.fit', payload });
    await eventually(() => got.length === 1, 'delivery');
    expect(got[0]).toEqual({
      name: 'round.fit',
      payload: { task_id: 't1', when: '1970-01-01T00:00:00.000Z', nested: { a: [1, 2] } },
      routingKey: 'round.fit',
      redelivered: false,
      userId: 'site-a',
      messageId: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    expect(got[0].payload.nested).not.toBe(payload.nested);
  });

  it('with prefetch 1 runs handler calls strictly one after another', async () => {
    let running = 0;
    let maxRunning = 0;
    let done = 0;
    await bus.consume({ name: 'q', bindings: ['a'] }, async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await new Promise((r) => setTimeout(r, 2));
      running--;
      done++;
    });
    await Promise.all(Array.from({ length: 10 }, () => bus.publish('a', { name: 'x', payload: {} })));
    await eventually(() => done === 10, 'ten handler calls');
    expect(maxRunning).toBe(1);
  });

  it('with prefetch 3 runs at most three handler calls at once', async () => {
    let running = 0;
    let maxRunning = 0;
    let done = 0;
    await bus.consume({ name: 'q', bindings: ['a'], prefetch: 3 }, async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await new Promise((r) => setTimeout(r, 5));
      running--;
      done++;
    });
    await Promise.all(Array.from({ length: 12 }, () => bus.publish('a', { name: 'x', payload: {} })));
    await eventually(() => done === 12, 'twelve handler calls');
    expect(maxRunning).toBe(3);
  });

  it('keeps collecting messages for a declared queue while the consumer is slow or absent', async () => {
    await bus.declareQueue({ name: 'late', bindings: ['a'] });
    await bus.publish('a', { name: 'x', payload: { i: 1 } });
    await bus.publish('a', { name: 'x', payload: { i: 2 } });
    expect(bus.queueDepth('late')).toBe(2);
    const got: unknown[] = [];
    const sub = await bus.consume({ name: 'late', bindings: ['a'] }, async (m) => void got.push(m.payload.i));
    await eventually(() => got.length === 2, 'backlog');
    await sub.cancel();
    await bus.publish('a', { name: 'x', payload: { i: 3 } });
    expect(bus.queueDepth('late')).toBe(1);
    expect(got).toEqual([1, 2]);
  });

  it('adds a binding to a queue, also through a view of another user; refuses a queue that does not exist', async () => {
    const got: string[] = [];
    await bus.consume({ name: 'grows', bindings: ['a'] }, async (m) => void got.push(m.routingKey));
    await bus.publish('b.x', { name: 'x', payload: {} });
    await bus.asUser('site-1').addBinding('grows', 'b.#');
    await bus.publish('b.y', { name: 'x', payload: {} });
    await bus.publish('a', { name: 'x', payload: {} });
    await eventually(() => got.length === 2, 'two deliveries');
    expect(got).toEqual(['b.y', 'a']);
    await expect(bus.addBinding('nope', 'a')).rejects.toThrow("cannot bind queue 'nope' to 'a': no such queue");
  });

  it('drops messages that match no queue, as a topic exchange does', async () => {
    await expect(bus.publish('nobody.listens', { name: 'x', payload: {} })).resolves.toBeUndefined();
    expect(logger.lines.some((l) => l.level === 'debug' && l.message.includes('nobody.listens'))).toBe(true);
  });

  it('dead-letters a message whose handler throws, and logs name and routing key', async () => {
    const after: unknown[] = [];
    await bus.consume({ name: 'q', bindings: ['round.#'] }, async (m) => {
      if (m.payload.i === 1) throw new Error('boom');
      after.push(m.payload.i);
    });
    await bus.publish('round.fit', { name: 'round.fit', payload: { i: 1 } });
    await bus.publish('round.fit', { name: 'round.fit', payload: { i: 2 } });
    await eventually(() => after.length === 1, 'second message');
    expect(bus.deadLetters).toHaveLength(1);
    expect(bus.deadLetters[0]).toMatchObject({ queue: 'q', message: { name: 'round.fit', payload: { i: 1 } }, reason: 'Error: boom' });
    expect(logger.errors()[0]).toMatch(/'round\.fit'.*routing key 'round\.fit'.*boom/);
  });

  it('requeues once on RequeueError, then dead-letters', async () => {
    const seen: boolean[] = [];
    await bus.consume({ name: 'q', bindings: ['a'] }, async (m) => {
      seen.push(m.redelivered);
      throw new RequeueError('not ready');
    });
    await bus.publish('a', { name: 'x', payload: {} });
    await eventually(() => bus.deadLetters.length === 1, 'dead letter');
    expect(seen).toEqual([false, true]);
    expect(bus.deadLetters[0].message.redelivered).toBe(true);
  });

  it('delivers a requeued message before later ones', async () => {
    const order: string[] = [];
    let failedOnce = false;
    await bus.consume({ name: 'q', bindings: ['a'] }, async (m) => {
      order.push(`${m.payload.i}${m.redelivered ? 'r' : ''}`);
      if (m.payload.i === 1 && !failedOnce) {
        failedOnce = true;
        throw new RequeueError();
      }
    });
    for (const i of [1, 2, 3]) await bus.publish('a', { name: 'x', payload: { i } });
    await eventually(() => order.length === 4, 'four deliveries');
    expect(order).toEqual(['1', '1r', '2', '3']);
  });

  it('passes a binary attachment through byte-exact', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 7);
    const got: InboundMessage[] = [];
    await bus.consume({ name: 'q', bindings: ['weights.#'] }, async (m) => void got.push(m));
    await bus.publish('weights.update', { name: 'round.fit-result', payload: { round: 3 }, attachment: bytes });
    await eventually(() => got.length === 1, 'delivery');
    expect(got[0].payload).toEqual({ round: 3 });
    expect(Buffer.compare(got[0].attachment!, bytes)).toBe(0);
  });

  it('refuses a message above the size limit before publishing', async () => {
    const small = new InMemoryBus({ maxMessageBytes: 1024, logger });
    await expect(small.publish('a', { name: 'big', payload: {}, attachment: Buffer.alloc(1025) })).rejects.toThrow(MessageTooLargeError);
    await expect(small.publish('a', { name: 'big', payload: {}, attachment: Buffer.alloc(1025) })).rejects.toThrow(/'big' is 1025 bytes, above the 1024-byte limit/);
    await small.close();
  });

  it('refuses a second consumer on the same queue', async () => {
    await bus.consume({ name: 'q', bindings: ['a'] }, async () => undefined);
    await expect(bus.consume({ name: 'q', bindings: ['a'] }, async () => undefined)).rejects.toThrow(/already has a consumer/);
  });

  it('close waits for handler calls in flight and refuses later publishes', async () => {
    let finished = false;
    let started = false;
    await bus.consume({ name: 'q', bindings: ['a'] }, async () => {
      started = true;
      await new Promise((r) => setTimeout(r, 30));
      finished = true;
    });
    await bus.publish('a', { name: 'x', payload: {} });
    await eventually(() => started, 'handler start');
    await bus.close();
    expect(finished).toBe(true);
    await expect(bus.publish('a', { name: 'x', payload: {} })).rejects.toThrow(/closed/);
  });
});
