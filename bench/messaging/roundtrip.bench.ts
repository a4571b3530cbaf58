import { describeBrokerUrl, InboundMessage, RabbitMqBus } from '@fl/messaging';
import * as amqplib from 'amqplib';
import { randomBytes } from 'node:crypto';

export interface MessagingBenchOptions {
  url: string;
  /** Round trips per Nagle setting (after a warm-up of a tenth, at least 10). */
  iterations: number;
  /** 1 MiB messages in the throughput run; default 200. */
  throughputMessages?: number;
}

export interface LatencyStats {
  samples: number;
  medianMs: number;
  p95Ms: number;
  minMs: number;
  maxMs: number;
}

export interface MessagingBenchResult {
  broker: string;
  node: string;
  iterations: number;
  /** publish → consumer on queue A → reply published → consumer on queue B, two connections. */
  roundTrip: { noDelay: LatencyStats; nagle: LatencyStats };
  throughput1MiB: {
    messages: number;
    messageBytes: number;
    /** Persistent messages with publisher confirms on one connection, up to `window` unconfirmed. */
    publishConfirmedMiBps: number;
    /** Until a consumer on another connection has received (and acked) them all. */
    endToEndMiBps: number;
    window: number;
  };
  finishedAt: string;
}

const MiB = 1024 * 1024;

/** Measures the broker round trip with Nagle off and on, and 1 MiB confirmed throughput. Not a test. */
export async function runMessagingBench(opts: MessagingBenchOptions): Promise<MessagingBenchResult> {
  const prefix = `bench.messaging.${randomBytes(4).toString('hex')}`;
  const names = { exchange: `${prefix}.events`, deadLetterExchange: `${prefix}.dead-letter` };
  const queues = [`${prefix}.a`, `${prefix}.b`, `${prefix}.bulk`];
  try {
    const noDelay = await measureRoundTrip(opts, names, queues, true);
    const nagle = await measureRoundTrip(opts, names, queues, false);
    const throughput = await measureThroughput(opts, names, queues[2], opts.throughputMessages ?? 200);
    return {
      broker: describeBrokerUrl(opts.url),
      node: process.version,
      iterations: opts.iterations,
      roundTrip: { noDelay, nagle },
      throughput1MiB: throughput,
      finishedAt: new Date().toISOString(),
    };
  } finally {
    await deleteTopology(opts.url, names, queues);
  }
}

async function measureRoundTrip(
  opts: MessagingBenchOptions,
  names: { exchange: string; deadLetterExchange: string },
  queues: string[],
  noDelay: boolean,
): Promise<LatencyStats> {
  const connect = (role: string) =>
    RabbitMqBus.connect(opts.url, { ...names, noDelay, connectionName: `messaging-bench-${role}`, logger: quietLogger });
  const responder = await connect('responder');
  const requester = await connect('requester');
  try {
    await responder.consume({ name: queues[0], bindings: ['ping'] }, async (m) => {
      await responder.publish('pong', { name: 'bench.pong', payload: m.payload });
    });
    let awaiting: ((m: InboundMessage) => void) | undefined;
    await requester.consume({ name: queues[1], bindings: ['pong'] }, async (m) => awaiting?.(m));

    const warmUp = Math.max(10, Math.ceil(opts.iterations / 10));
    const samples: number[] = [];
    for (let i = 0; i < warmUp + opts.iterations; i++) {
      const started = process.hrtime.bigint();
      const pong = new Promise<InboundMessage>((resolve) => (awaiting = resolve));
      await Promise.all([requester.publish('ping', { name: 'bench.ping', payload: { i } }), pong]);
      if (i >= warmUp) samples.push(Number(process.hrtime.bigint() - started) / 1e6);
    }
    return stats(samples);
  } finally {
    await requester.close();
    await responder.close();
  }
}

async function measureThroughput(
  opts: MessagingBenchOptions,
  names: { exchange: string; deadLetterExchange: string },
  queue: string,
  messages: number,
): Promise<MessagingBenchResult['throughput1MiB']> {
  const window = 16;
  const publisher = await RabbitMqBus.connect(opts.url, { ...names, connectionName: 'messaging-bench-publisher', logger: quietLogger });
  const consumer = await RabbitMqBus.connect(opts.url, { ...names, connectionName: 'messaging-bench-consumer', logger: quietLogger });
  const attachment = randomBytes(MiB);
  try {
    let received = 0;
    let allReceived!: () => void;
    const done = new Promise<void>((resolve) => (allReceived = resolve));
    await consumer.consume({ name: queue, bindings: ['bulk'], prefetch: window }, async () => {
      if (++received === messages) allReceived();
    });
    const started = process.hrtime.bigint();
    let next = 0;
    const lane = async () => {
      while (next < messages) {
        const i = next++;
        await publisher.publish('bulk', { name: 'bench.bulk', payload: { i }, attachment });
      }
    };
    await Promise.all(Array.from({ length: window }, lane));
    const confirmedS = Number(process.hrtime.bigint() - started) / 1e9;
    await done;
    const receivedS = Number(process.hrtime.bigint() - started) / 1e9;
    const totalMiB = (messages * attachment.length) / MiB;
    return {
      messages,
      messageBytes: attachment.length,
      publishConfirmedMiBps: round(totalMiB / confirmedS),
      endToEndMiBps: round(totalMiB / receivedS),
      window,
    };
  } finally {
    await consumer.close();
    await publisher.close();
  }
}

async function deleteTopology(url: string, names: { exchange: string; deadLetterExchange: string }, queues: string[]) {
  const connection = await amqplib.connect(url);
  try {
    const channel = await connection.createChannel();
    for (const q of [...queues, names.deadLetterExchange]) await channel.deleteQueue(q);
    await channel.deleteExchange(names.exchange);
    await channel.deleteExchange(names.deadLetterExchange);
  } finally {
    await connection.close();
  }
}

function stats(samples: number[]): LatencyStats {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  return {
    samples: sorted.length,
    medianMs: round(at(0.5)),
    p95Ms: round(at(0.95)),
    minMs: round(sorted[0]),
    maxMs: round(sorted[sorted.length - 1]),
  };
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

const quietLogger = {
  log: () => undefined,
  warn: (m: string) => console.warn(m),
  error: (m: string) => console.error(m),
};
