import * as amqplib from 'amqplib';
import { randomFillSync } from 'node:crypto';
// The modules themselves, not the libraries' index files: four processes start per run, and the
// raw path never loads the bus.
import { Bindings, Msg, Routes } from '../../libs/contracts/src/messages';
import type { RabbitMqBus as Bus } from '../../libs/messaging/src/rabbitmq-bus';

/**
 * One process of the transfer benchmark (bench/transfer.bench.ts forks four: a coordinator and three
 * workers), so that each side's memory is its own. Two paths move the same bytes:
 *  - `bus`: RabbitMqBus as the apps use it: the weights published once to `workers.<use case>.round.fit`
 *    (fanned out by the broker), in 16 MiB chunks, reassembled and SHA-256-checked by each worker; each
 *    worker's update published the same way to `coordinator.<id>.round.fit-result`.
 *  - `raw`: plain amqplib, the broker's own throughput for the same bytes: persistent 16 MiB messages
 *    with publisher confirms (the same window of 4 as the bus), consumed with manual acks and the same
 *    prefetch as the apps (1 at a worker, 8 at the coordinator), nothing copied, hashed or reassembled;
 *    the sender publishes one 16 MiB block as often as the model needs, so it holds no model either.
 * The parent drives the phases over IPC; times are wall-clock milliseconds, comparable across processes.
 */
export interface PeerConfig {
  role: 'coordinator' | 'worker';
  name: string;
  path: 'bus' | 'raw';
  url: string;
  bytes: number;
  chunkBytes: number;
  workers: string[];
}

export type ToPeer = { cmd: 'broadcast' } | { cmd: 'return' } | { cmd: 'exit' };
export type FromPeer =
  | { evt: 'ready'; rss: number }
  | { evt: 'broadcasting'; at: number }
  | { evt: 'published'; at: number }
  | { evt: 'received'; at: number; bytes: number }
  | { evt: 'returning'; at: number }
  | { evt: 'returned'; at: number }
  | { evt: 'collected'; at: number; updates: number; bytes: number }
  | { evt: 'done'; peakRss: number }
  | { evt: 'failed'; message: string };

const USE_CASE = 'bench';
const COORDINATOR_ID = 'bench';
const EXCHANGE = 'fl.events';
const CHUNKS_IN_FLIGHT = 4;
const PREFETCH = { coordinator: 8, worker: 1 };

// Once the parent has disconnected there is nobody left to tell.
const send = (m: FromPeer) => {
  if (process.connected) process.send!(m);
};
const quietLogger = { log: () => undefined, warn: (m: string) => console.warn(m), error: (m: string) => console.error(m) };

interface Side {
  broadcast?(): Promise<void>;
  returnUpdate?(): Promise<void>;
  close(): Promise<void>;
}

async function busSide(c: PeerConfig): Promise<Side> {
  const { RabbitMqBus } = (await import('../../libs/messaging/src/rabbitmq-bus')) as { RabbitMqBus: typeof Bus };
  const bus = await RabbitMqBus.connect(c.url, { connectionName: `transfer-bench-${c.name}`, logger: quietLogger, chunkBytes: c.chunkBytes });
  if (c.role === 'coordinator') {
    const weights = randomBytes(c.bytes);
    let updates = 0;
    let bytes = 0;
    await bus.consume({ name: `fl.coordinator.${COORDINATOR_ID}`, bindings: Bindings.coordinator(COORDINATOR_ID), prefetch: PREFETCH.coordinator }, async (m) => {
      if (m.name !== Msg.RoundFitResult) return;
      updates++;
      bytes += m.attachment?.length ?? 0;
      if (updates === c.workers.length) send({ evt: 'collected', at: Date.now(), updates, bytes });
    });
    return {
      broadcast: async () => {
        send({ evt: 'broadcasting', at: Date.now() });
        await bus.publish(Routes.useCaseWorkers(USE_CASE, Msg.RoundFit), { name: Msg.RoundFit, payload: { task_id: 1, round: 1, sender: COORDINATOR_ID }, attachment: weights });
        send({ evt: 'published', at: Date.now() });
      },
      close: () => bus.close(),
    };
  }
  let model: Buffer | undefined;
  await bus.consume({ name: `fl.worker.${c.name}`, bindings: Bindings.worker(c.name, [USE_CASE]), prefetch: PREFETCH.worker }, async (m) => {
    if (m.name !== Msg.RoundFit) return;
    model = m.attachment;
    send({ evt: 'received', at: Date.now(), bytes: model?.length ?? 0 });
  });
  return {
    // Training is a no-op: the update is the model as received, the same size.
    returnUpdate: async () => {
      send({ evt: 'returning', at: Date.now() });
      await bus.publish(Routes.coordinator(COORDINATOR_ID, Msg.RoundFitResult), {
        name: Msg.RoundFitResult,
        payload: { task_id: 1, round: 1, sender: c.name },
        attachment: model!,
      });
      send({ evt: 'returned', at: Date.now() });
    },
    close: () => bus.close(),
  };
}

async function rawSide(c: PeerConfig): Promise<Side> {
  const connection = await amqplib.connect(c.url, { noDelay: true });
  const channel = await connection.createConfirmChannel();
  await channel.assertExchange(EXCHANGE, 'topic', { durable: true });
  const queue = c.role === 'coordinator' ? `fl.coordinator.${COORDINATOR_ID}` : `fl.worker.${c.name}`;
  const bindings = c.role === 'coordinator' ? Bindings.coordinator(COORDINATOR_ID) : Bindings.worker(c.name, [USE_CASE]);
  await channel.assertQueue(queue, { durable: true });
  for (const b of bindings) await channel.bindQueue(queue, EXCHANGE, b);
  const consumer = await connection.createChannel();
  await consumer.prefetch(PREFETCH[c.role]);
  const expected = c.role === 'coordinator' ? c.bytes * c.workers.length : c.bytes;
  let received = 0;
  await consumer.consume(queue, (m) => {
    if (!m) return;
    received += m.content.length;
    consumer.ack(m);
    if (received === expected) {
      if (c.role === 'coordinator') send({ evt: 'collected', at: Date.now(), updates: c.workers.length, bytes: received });
      else send({ evt: 'received', at: Date.now(), bytes: received });
    }
  });
  // The broker's own cost, without the sender holding the model: one random block, published as often as the model needs.
  const block = randomBytes(Math.min(c.chunkBytes, c.bytes));
  const close = async () => {
    await connection.close();
  };
  if (c.role === 'coordinator') {
    return {
      broadcast: async () => {
        send({ evt: 'broadcasting', at: Date.now() });
        await publishRaw(channel, Routes.useCaseWorkers(USE_CASE, Msg.RoundFit), block, c.bytes);
        send({ evt: 'published', at: Date.now() });
      },
      close,
    };
  }
  return {
    returnUpdate: async () => {
      send({ evt: 'returning', at: Date.now() });
      await publishRaw(channel, Routes.coordinator(COORDINATOR_ID, Msg.RoundFitResult), block, c.bytes);
      send({ evt: 'returned', at: Date.now() });
    },
    close,
  };
}

/** `bytes` as persistent messages of `block`'s size (the last one shorter), at most CHUNKS_IN_FLIGHT awaiting their confirm. */
async function publishRaw(channel: amqplib.ConfirmChannel, routingKey: string, block: Buffer, bytes: number): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  for (let offset = 0; offset < bytes; offset += block.length) {
    const slice = block.subarray(0, Math.min(block.length, bytes - offset));
    const confirmed: Promise<void> = new Promise<void>((resolve, reject) => {
      channel.publish(EXCHANGE, routingKey, slice, { persistent: true, contentType: 'application/octet-stream' }, (err) => (err ? reject(err) : resolve()));
    }).finally(() => inFlight.delete(confirmed));
    inFlight.add(confirmed);
    if (inFlight.size >= CHUNKS_IN_FLIGHT) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
}

/** Bytes nothing on the way could compress (not that anything tries): a random 16 MiB block, repeated. */
function randomBytes(n: number): Buffer {
  const block = randomFillSync(Buffer.allocUnsafe(Math.min(n, 16 * 1024 * 1024)));
  const b = Buffer.allocUnsafe(n);
  for (let off = 0; off < n; off += block.length) block.copy(b, off, 0, Math.min(block.length, n - off));
  return b;
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2]) as PeerConfig;
  const side = config.path === 'bus' ? await busSide(config) : await rawSide(config);
  const fail = (err: unknown) => send({ evt: 'failed', message: (err as Error)?.stack ?? String(err) });
  process.on('message', (m: ToPeer) => {
    if (m.cmd === 'broadcast') side.broadcast!().catch(fail);
    else if (m.cmd === 'return') side.returnUpdate!().catch(fail);
    else if (m.cmd === 'exit') {
      void side
        .close()
        .catch(() => undefined)
        .then(() => {
          // ru_maxrss: the process's peak resident set, in KiB.
          send({ evt: 'done', peakRss: process.resourceUsage().maxRSS * 1024 });
          process.disconnect();
        });
    }
  });
  send({ evt: 'ready', rss: process.memoryUsage.rss() });
}

main().catch((err) => {
  send({ evt: 'failed', message: (err as Error)?.stack ?? String(err) });
  process.exitCode = 1;
  process.disconnect();
});
