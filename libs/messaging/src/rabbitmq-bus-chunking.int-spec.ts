import * as amqplib from 'amqplib';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InboundMessage } from './message-bus';
import { RabbitMqBus, RabbitMqBusOptions } from './rabbitmq-bus';
import { CapturingLogger, eventually } from './testing/capturing-logger';
import { createTestVhost, TestVhost } from './testing/rabbitmq-test-vhost';

const MANAGEMENT_URL = process.env.FL_TEST_RABBITMQ_MANAGEMENT_URL ?? 'http://guest:guest@127.0.0.1:15672';

const management = (() => {
  const u = new URL(MANAGEMENT_URL);
  return { base: `${u.protocol}//${u.host}`, auth: `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}` };
})();

/** The broker's names of the connections a client named so, once the management API lists them. */
async function connectionsNamed(connectionName: string): Promise<string[]> {
  const { base, auth } = management;
  let names: string[] = [];
  await eventually(async () => {
    const list = (await (await fetch(`${base}/api/connections`, { headers: { authorization: auth } })).json()) as {
      name: string;
      client_properties?: { connection_name?: string };
    }[];
    names = list.filter((c) => c.client_properties?.connection_name === connectionName).map((c) => c.name);
    return names.length > 0;
  }, `connection ${connectionName} listed by the management API`);
  return names;
}

/** Closes connections by the broker's names for them, as a broker restart or a network cut would. */
async function closeConnections(names: string[]): Promise<void> {
  const { base, auth } = management;
  for (const name of names) {
    const res = await fetch(`${base}/api/connections/${encodeURIComponent(name)}`, { method: 'DELETE', headers: { authorization: auth, 'x-reason': 'chunking test' } });
    expect(res.status).toBe(204);
  }
}


const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** The next message of the dead-letter queue, taken off it. The nack follows the bus's log line; the broker dead-letters on its own time. */
async function nextDeadLetter(ch: amqplib.Channel): Promise<amqplib.GetMessage> {
  let dead: amqplib.GetMessage | false = false;
  await eventually(async () => (dead = await ch.get('fl.dead-letter', { noAck: true })) !== false, 'the dead letter');
  return dead as unknown as amqplib.GetMessage;
}

/** Attachments beyond the broker's message size limit, over a real RabbitMQ, through connection losses. */
describe('RabbitMqBus: large attachments in chunks (real RabbitMQ)', () => {
  jest.setTimeout(120_000);
  let vhost: TestVhost;
  const buses: RabbitMqBus[] = [];
  let logger: CapturingLogger;
  const connect = async (name: string, options: RabbitMqBusOptions = {}) => {
    const bus = await RabbitMqBus.connect(vhost.url, { logger, connectionName: name, ...options });
    buses.push(bus);
    return bus;
  };

  beforeAll(async () => {
    vhost = await createTestVhost('fl-chunking-spec');
  });
  beforeEach(() => {
    logger = new CapturingLogger();
  });
  afterEach(async () => {
    await Promise.all(buses.splice(0).map((b) => b.close()));
  });
  afterAll(async () => {
    await vhost?.dispose();
  });

  it("carries a 200 MiB attachment, above RabbitMQ's 128 MiB message limit, byte-exact to one handler call", async () => {
    const publisher = await connect('chunk-publisher');
    const consumer = await connect('chunk-consumer');
    const bytes = randomBytes(200 * 1024 * 1024 + 5);
    const got: InboundMessage[] = [];
    await consumer.consume({ name: 'big-q', bindings: ['weights.#'] }, async (m) => void got.push(m));
    await publisher.publish('weights.site-a', { name: 'round.fit-result', payload: { round: 3 }, attachment: bytes });
    await eventually(() => got.length === 1, 'the reassembled message', 60_000);
    expect(got[0].payload).toEqual({ round: 3 });
    expect(got[0].chunk).toBeUndefined();
    expect(got[0].attachment!.length).toBe(bytes.length);
    expect(sha(got[0].attachment!)).toBe(sha(bytes));
    expect(got[0].attachmentSha256).toBe(sha(bytes));
    // 16 MiB chunks: 13 messages on the wire, one handler call.
    expect(publisher.stats.messagesPublished).toBe(13);
    expect(consumer.stats.messagesDelivered).toBe(13);
  });

  it('resumes a transfer after the publisher and the consumer lose their connections mid-way', async () => {
    const chunkBytes = 32 * 1024;
    const publisher = await connect('resume-publisher', { chunkBytes, reconnectTimeInSeconds: 0.2 });
    const consumer = await connect('resume-consumer', { chunkBytes, reconnectTimeInSeconds: 0.2 });
    // 8,192 chunks: seconds of transfer, so that the connections drop mid-way.
    const bytes = randomBytes(256 * 1024 * 1024);
    const count = bytes.length / chunkBytes;
    const got: InboundMessage[] = [];
    await consumer.consume({ name: 'resume-q', bindings: ['model.#'], prefetch: 8 }, async (m) => void got.push(m));
    // Looked up before the transfer starts (the management API lists a new connection after a while): once it is
    // under way, closing them takes two requests, well within the transfer even on a fast machine.
    const connections = [...(await connectionsNamed('resume-publisher')), ...(await connectionsNamed('resume-consumer'))];
    const sent = publisher.publish('model.site-b', { name: 'model.package', payload: { sha: sha(bytes) }, attachment: bytes });
    await eventually(() => publisher.stats.messagesPublished >= 50 && consumer.stats.messagesDelivered >= 20, 'the transfer under way', 30_000);
    await closeConnections(connections);
    // Both connections were lost before the transfer ended (lengths only: a diff of the attachment would not print).
    expect(got.length).toBe(0);
    expect(consumer.stats.messagesDelivered).toBeLessThan(count);
    await sent;
    await eventually(() => got.length === 1, 'the reassembled message', 60_000);
    expect(sha(got[0].attachment!)).toBe(sha(bytes));
    expect(got[0].payload).toEqual({ sha: sha(bytes) });
    await eventually(() => publisher.stats.reconnects >= 1 && consumer.stats.reconnects >= 1, 'both buses reconnected');
    expect(got.length).toBe(1);
  });

  it('puts together a transfer that arrives while another is being handled in a file in the folder given, and hands it over whole once the first is done', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fl-reassembly-spec-'));
    try {
      const chunkBytes = 64 * 1024;
      const publisher = await connect('spill-publisher', { chunkBytes });
      // Memory for one attachment: the second waits in a file in `dir` while the first one's handler runs.
      const consumer = await connect('spill-consumer', { chunkBytes, reassemblyMemoryBytes: 1, reassemblySpillDir: dir });
      const [first, second] = [randomBytes(1024 * 1024 + 7), randomBytes(1024 * 1024 + 11)];
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const got: InboundMessage[] = [];
      await consumer.consume({ name: 'spill-q', bindings: ['spill.#'], prefetch: 8 }, async (m) => {
        got.push(m);
        if (got.length === 1) await held;
      });
      await publisher.publish('spill.site-a', { name: 'round.fit-result', payload: { k: 1 }, attachment: first });
      await eventually(() => got.length === 1, 'the first attachment handed over');
      await publisher.publish('spill.site-b', { name: 'round.fit-result', payload: { k: 2 }, attachment: second });
      // Every chunk of the second is in, and it waits in a file of `dir` for the first one's handler.
      await eventually(() => consumer.stats.messagesDelivered === 2 * 17, 'all chunks of both delivered');
      expect(readdirSync(dir).filter((f) => f.startsWith('fl-chunks-'))).toHaveLength(1);
      expect(got).toHaveLength(1);
      release();
      await eventually(() => got.length === 2, 'the second attachment handed over');
      expect(sha(got[0].attachment!)).toBe(sha(first));
      expect(sha(got[1].attachment!)).toBe(sha(second));
      expect(got[1].payload).toEqual({ k: 2 });
      await eventually(() => readdirSync(dir).length === 0, 'the file removed');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("sends the sender's hash of a chunked attachment, which the handler gets once the bytes are checked against it; one in a single message gets none", async () => {
    const chunkBytes = 4096;
    const publisher = await connect('given-hash-publisher', { chunkBytes });
    const consumer = await connect('given-hash-consumer', { chunkBytes });
    const got: InboundMessage[] = [];
    await consumer.consume({ name: 'given-hash-q', bindings: ['given.#'] }, async (m) => void got.push(m));
    const bytes = randomBytes(3 * chunkBytes + 11);
    const small = randomBytes(chunkBytes);
    await publisher.publish('given.a', { name: 'round.fit-result', payload: { n: 1 }, attachment: bytes, attachmentSha256: sha(bytes) });
    // A wrong hash from the sender: the transfer is refused, the handler never called.
    await publisher.publish('given.b', { name: 'round.fit-result', payload: { n: 2 }, attachment: randomBytes(bytes.length), attachmentSha256: sha(bytes) });
    await publisher.publish('given.c', { name: 'round.fit-result', payload: { n: 3 }, attachment: small, attachmentSha256: sha(small) });
    await eventually(() => got.length === 2, 'the two good messages');
    await eventually(() => logger.errors().some((e) => e.includes('reassembled bytes have SHA-256')), 'the refusal');
    expect(got.map((m) => m.payload)).toEqual([{ n: 1 }, { n: 3 }]);
    expect(got[0].attachment).toEqual(bytes);
    expect(got[0].attachmentSha256).toBe(sha(bytes));
    // Not chunked: the bus checked nothing, so it vouches for nothing.
    expect(got[1].attachment).toEqual(small);
    expect(got[1].attachmentSha256).toBeUndefined();
    // The refused transfer's last chunk is dead-lettered (taken here, so that the queue is left as found).
    const raw = await amqplib.connect(vhost.url);
    try {
      const dead = await nextDeadLetter(await raw.createChannel());
      expect(dead.fields.routingKey).toBe('given.b');
    } finally {
      await raw.close();
    }
  });

  it('dead-letters a chunk whose transfer does not add up, and gives the handler nothing', async () => {
    const consumer = await connect('tamper-consumer');
    const got: InboundMessage[] = [];
    await consumer.consume({ name: 'tamper-q', bindings: ['tamper.#'] }, async (m) => void got.push(m));
    const raw = await amqplib.connect(vhost.url);
    try {
      const ch = await raw.createConfirmChannel();
      const info = { transfer: '8d3c1a52-8f0e-4d47-9d4c-6d7f7f2f7e11', index: 0, count: 1, bytes: 4, offset: 0, sha256: sha(Buffer.from('abcd')) };
      ch.publish('fl.events', 'tamper.x', Buffer.from('abce'), {
        type: 'model.package', messageId: 'tampered', contentType: 'application/octet-stream', persistent: true,
        headers: { 'x-fl-payload': '{}', 'x-fl-chunk': JSON.stringify(info) },
      });
      await ch.waitForConfirms();
      await eventually(() => logger.errors().some((e) => e.includes('reassembled bytes have SHA-256')), 'the refusal');
      const dead = await nextDeadLetter(ch);
      expect(dead.properties.messageId).toBe('tampered');
      expect(got.length).toBe(0);
    } finally {
      await raw.close();
    }
  });
});
