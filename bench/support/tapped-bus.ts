import { InboundMessage, MessageBus, MessageHandler, OutboundMessage, QueueSpec, Subscription } from '@fl/messaging';

/** Epoch milliseconds with sub-millisecond resolution, comparable with Date.now(). */
export const nowMs = () => performance.timeOrigin + performance.now();

export interface BusEvent {
  at: number;
  /** Which app's bus saw it: 'coordinator', 'gateway', 'site-1', ... */
  app: string;
  /** publish: publish() called; confirmed: it resolved; delivered: handler called; handled: handler settled. */
  kind: 'publish' | 'confirmed' | 'delivered' | 'handled';
  name: string;
  round: number;
  payload: Record<string, unknown>;
}

/** One in-process log of what every app's bus did, with waiting for a given event. */
export class BusTap {
  readonly events: BusEvent[] = [];
  private waiters: { match: (e: BusEvent) => boolean; resolve: (e: BusEvent) => void }[] = [];

  record(app: string, kind: BusEvent['kind'], msg: OutboundMessage): void {
    const e: BusEvent = { at: nowMs(), app, kind, name: msg.name, round: Number(msg.payload.round ?? 0), payload: msg.payload };
    this.events.push(e);
    if (!this.waiters.length) return;
    this.waiters = this.waiters.filter((w) => {
      if (!w.match(e)) return true;
      w.resolve(e);
      return false;
    });
  }

  waitFor(match: (e: BusEvent) => boolean, timeoutMs: number, what: string): Promise<BusEvent> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`bench: no ${what} within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ match, resolve: (e) => (clearTimeout(timer), resolve(e)) });
    });
  }

  /** A bus for one app that records into this tap. */
  wrap(app: string, inner: MessageBus): MessageBus {
    return new TappedBus(app, inner, this);
  }
}

/**
 * Delegates to the real bus and timestamps every publish (called and
 * confirmed) and every delivery (handler called and settled). No production
 * code knows about it: the apps take any MessageBus.
 */
class TappedBus implements MessageBus {
  constructor(
    private readonly app: string,
    private readonly inner: MessageBus,
    private readonly tap: BusTap,
  ) {}

  get stats() {
    return this.inner.stats;
  }

  async publish(routingKey: string, msg: OutboundMessage): Promise<void> {
    this.tap.record(this.app, 'publish', msg);
    await this.inner.publish(routingKey, msg);
    this.tap.record(this.app, 'confirmed', msg);
  }

  consume(spec: QueueSpec, handler: MessageHandler): Promise<Subscription> {
    return this.inner.consume(spec, async (m: InboundMessage) => {
      this.tap.record(this.app, 'delivered', m);
      try {
        await handler(m);
      } finally {
        this.tap.record(this.app, 'handled', m);
      }
    });
  }

  addBinding(queue: string, pattern: string): Promise<void> {
    return this.inner.addBinding(queue, pattern);
  }

  /** The inner bus belongs to whoever built it. */
  async close(): Promise<void> {}
}
