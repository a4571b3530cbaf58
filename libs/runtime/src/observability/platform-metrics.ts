import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { BusStats } from '@fl/messaging';

/**
 * The Prometheus metrics of one app (names prefixed fl_, label app=<name>).
 * Each app registers what it knows: the gateway tasks by status, the
 * coordinator rounds, updates and connected workers; every app its bus
 * traffic, broker reconnects and the process metrics.
 */
export class PlatformMetrics {
  readonly registry = new Registry();
  readonly rounds: Counter<'outcome'>;
  readonly roundDuration: Histogram;
  readonly updates: Counter<'phase' | 'result'>;

  constructor(readonly app: string) {
    this.registry.setDefaultLabels({ app });
    collectDefaultMetrics({ register: this.registry, prefix: 'fl_' });
    this.rounds = new Counter({ name: 'fl_rounds_total', help: 'Federated rounds run, by outcome', labelNames: ['outcome'], registers: [this.registry] });
    this.roundDuration = new Histogram({
      name: 'fl_round_duration_seconds',
      help: 'Duration of completed rounds (fit, aggregation, evaluation, checkpoint)',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers: [this.registry],
    });
    this.updates = new Counter({
      name: 'fl_updates_total',
      help: 'Answers of edge workers to round instructions, by phase and result (received, rejected, failed, missing)',
      labelNames: ['phase', 'result'],
      registers: [this.registry],
    });
  }

  /** Bus traffic and broker reconnects, read from the bus's own counters at scrape time. */
  watchBus(stats: BusStats): void {
    const counterFrom = (name: string, help: string, read: () => number) => {
      let seen = 0;
      new Counter({
        name,
        help,
        registers: [this.registry],
        collect() {
          const now = read();
          if (now > seen) this.inc(now - seen);
          seen = now;
        },
      });
    };
    counterFrom('fl_bus_bytes_sent_total', 'Bytes of messages published (JSON payloads and binary weights)', () => stats.bytesPublished);
    counterFrom('fl_bus_bytes_received_total', 'Bytes of messages delivered to this app', () => stats.bytesDelivered);
    counterFrom('fl_bus_messages_sent_total', 'Messages published', () => stats.messagesPublished);
    counterFrom('fl_bus_messages_received_total', 'Messages delivered to this app', () => stats.messagesDelivered);
    counterFrom('fl_broker_reconnects_total', 'Connections to the broker re-established after a loss', () => stats.reconnects);
    new Gauge({
      name: 'fl_broker_connected',
      help: '1 while the broker connection is up',
      registers: [this.registry],
      collect() {
        this.set(stats.connected ? 1 : 0);
      },
    });
  }

  /** A gauge whose value is read at scrape time, with labels. */
  gaugeFrom<L extends string>(name: string, help: string, labelNames: L[], read: () => Promise<{ labels: Record<L, string>; value: number }[]>): void {
    new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const { labels, value } of await read()) this.set(labels, value);
      },
    });
  }
}
