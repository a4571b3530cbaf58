import * as amqplib from 'amqplib';
import type { Socket } from 'node:net';
import { coalesceWrites } from './coalesced-writes';
import { createTestVhost, TestVhost } from './testing/rabbitmq-test-vhost';

/** Against a real RabbitMQ, in a vhost of its own: what reaches the socket, and what reaches the consumer. */
describe('coalesceWrites (real RabbitMQ)', () => {
  jest.setTimeout(30_000);
  let vhost: TestVhost;
  const connections: amqplib.ChannelModel[] = [];

  beforeAll(async () => {
    vhost = await createTestVhost('fl-coalesce');
  });
  afterAll(async () => {
    for (const c of connections) await c.close().catch(() => undefined);
    await vhost?.dispose();
  });

  /** A connection (heartbeats off, so that only our frames are written) and the socket calls it makes while `send` runs and its frames go out. */
  async function writesDuring(coalesce: boolean, send: (ch: amqplib.ConfirmChannel) => void) {
    const conn = await amqplib.connect(`${vhost.url}?heartbeat=0`, { noDelay: true });
    connections.push(conn);
    expect(coalesceWrites(coalesce ? conn : null)).toBe(coalesce);
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('q', { durable: true });
    await ch.purgeQueue('q');
    const socket = (conn as unknown as { connection: { stream: Socket } }).connection.stream;
    const calls = { write: 0, writev: 0 };
    const proto = Object.getPrototypeOf(socket) as { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
    socket._write = function (this: Socket, ...a: unknown[]) {
      calls.write++;
      return proto._write.apply(this, a);
    } as Socket['_write'];
    socket._writev = function (this: Socket, ...a: unknown[]) {
      calls.writev++;
      return proto._writev.apply(this, a);
    } as Socket['_writev'];
    send(ch);
    await ch.waitForConfirms();
    return { calls, ch };
  }

  const bodies = [Buffer.alloc(5000, 1), Buffer.alloc(3000, 2), Buffer.alloc(100, 3)];
  const publishAll = (ch: amqplib.ConfirmChannel) => bodies.forEach((b) => ch.publish('', 'q', b, { persistent: true }));

  it('sends the frames of several messages published together in one writev, where amqplib alone makes a write per frame', async () => {
    const plain = await writesDuring(false, publishAll);
    // Two messages above 2 KiB are two writes each (method and header, then body), the small one one write.
    expect(plain.calls.write).toBeGreaterThanOrEqual(5);

    const coalesced = await writesDuring(true, publishAll);
    expect(coalesced.calls).toEqual({ write: 0, writev: 1 });
  });

  it('delivers the same messages, whole and in order', async () => {
    const { ch } = await writesDuring(true, publishAll);
    const got: Buffer[] = [];
    for (let m = await ch.get('q', { noAck: true }); m; m = await ch.get('q', { noAck: true })) got.push(m.content);
    expect(got.map((b) => [b.length, b[0], b[b.length - 1]])).toEqual(bodies.map((b) => [b.length, b[0], b[b.length - 1]]));
  });

  it('leaves a connection it does not recognise as it is', () => {
    expect(coalesceWrites({})).toBe(false);
    expect(coalesceWrites({ connection: { muxer: { _readIncoming: 1 } } })).toBe(false);
  });
});
