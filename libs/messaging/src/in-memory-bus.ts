import { Logger } from '@nestjs/common';
import {
  DEFAULT_CLOSE_TIMEOUT_MS,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_PREFETCH,
  InboundMessage,
  MessageBus,
  MessageHandler,
  OutboundMessage,
  QueueSpec,
  Subscription,
} from './message-bus';
import { emptyBusStats } from './message-bus';
import { BusLogger, describeError, settlementForFailure } from './settlement';
import { topicMatches } from './topic-matcher';
import { decodeMessage, encodeMessage, EncodedMessage } from './wire-format';

export interface InMemoryBusOptions {
  /** Set as `userId` on every message published through this bus, as RabbitMQ would. */
  userId?: string;
  maxMessageBytes?: number;
  /** Longest `close()` / `cancel()` waits for handler calls in flight. */
  closeTimeoutMs?: number;
  logger?: BusLogger;
}

/** A message the bus gave up on, with the queue it was taken from and why. */
export interface DeadLetter {
  queue: string;
  message: InboundMessage;
  reason: string;
}

interface Consumer {
  handler: MessageHandler;
  inFlight: Set<Promise<void>>;
  active: boolean;
}

interface QueueState {
  spec: Required<Pick<QueueSpec, 'name' | 'prefetch'>>;
  bindings: Set<string>;
  messages: InboundMessage[];
  consumer?: Consumer;
  drainScheduled: boolean;
}

/**
 * The bus inside one process, for the demo and unit tests. Same semantics as `RabbitMqBus`:
 * topic bindings, per-queue FIFO, at most `prefetch` handler calls in flight per queue,
 * asynchronous delivery, payloads through a JSON round trip, dead-lettering on failure.
 *
 * As with an AMQP topic exchange, a message whose routing key matches no bound queue is
 * dropped (logged at debug level). Queues live as long as the bus: once declared by
 * `consume()` or `declareQueue()`, a queue keeps collecting messages while nobody consumes it.
 * Unlike RabbitMQ, a queue takes at most one consumer: a second one is the round-robin bug the
 * conventions forbid, so it is refused loudly rather than reproduced.
 */
export class InMemoryBus implements MessageBus {
  private readonly queues = new Map<string, QueueState>();
  private readonly deadLetterList: DeadLetter[] = [];
  private readonly logger: BusLogger;
  private readonly maxMessageBytes: number;
  private readonly closeTimeoutMs: number;
  private closed = false;
  readonly stats = emptyBusStats();

  constructor(private readonly options: InMemoryBusOptions = {}) {
    this.logger = options.logger ?? new Logger(InMemoryBus.name);
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
  }

  /** Messages dead-lettered so far, oldest first (the in-memory `fl.dead-letter` queue). */
  get deadLetters(): readonly DeadLetter[] {
    return this.deadLetterList;
  }

  /** Messages waiting in a queue (not counting those being handled). */
  queueDepth(queue: string): number {
    return this.queues.get(queue)?.messages.length ?? 0;
  }

  /**
   * The same bus seen through a connection of another user: what it publishes carries `userId`,
   * as RabbitMQ stamps (and checks) a site's own broker user. Closing the view closes nothing.
   */
  asUser(userId: string): MessageBus {
    return {
      stats: this.stats,
      publish: (routingKey, msg) => this.publishAs(userId, routingKey, msg),
      consume: (spec, handler) => this.consume(spec, handler),
      addBinding: (queue, pattern) => this.addBinding(queue, pattern),
      close: async () => undefined,
    };
  }

  publish(routingKey: string, msg: OutboundMessage): Promise<void> {
    return this.publishAs(this.options.userId, routingKey, msg);
  }

  private async publishAs(userId: string | undefined, routingKey: string, msg: OutboundMessage): Promise<void> {
    this.assertOpen();
    const encoded = encodeMessage(msg, { maxBytes: this.maxMessageBytes, userId });
    this.stats.messagesPublished++;
    this.stats.bytesPublished += encoded.content.length;
    let routed = 0;
    for (const queue of this.queues.values()) {
      if (![...queue.bindings].some((pattern) => topicMatches(pattern, routingKey))) continue;
      routed++;
      queue.messages.push(this.deliveryOf(encoded, routingKey));
      this.scheduleDrain(queue);
    }
    if (routed === 0) {
      (this.logger as { debug?(m: string): void }).debug?.(
        `message '${msg.name}' with routing key '${routingKey}' matched no queue and was dropped`,
      );
    }
  }

  /** Declares a queue (and adds bindings) without consuming, so that it starts collecting messages. */
  async declareQueue(spec: QueueSpec): Promise<void> {
    this.assertOpen();
    this.declare(spec);
  }

  async addBinding(queue: string, pattern: string): Promise<void> {
    this.assertOpen();
    const state = this.queues.get(queue);
    if (!state) throw new Error(`cannot bind queue '${queue}' to '${pattern}': no such queue`);
    state.bindings.add(pattern);
  }

  async consume(spec: QueueSpec, handler: MessageHandler): Promise<Subscription> {
    this.assertOpen();
    const queue = this.declare(spec);
    if (queue.consumer) {
      throw new Error(`queue '${spec.name}' already has a consumer; use one queue per consuming service instance`);
    }
    const consumer: Consumer = { handler, inFlight: new Set(), active: true };
    queue.consumer = consumer;
    this.scheduleDrain(queue);
    return {
      cancel: async () => {
        if (!consumer.active) return;
        consumer.active = false;
        if (queue.consumer === consumer) queue.consumer = undefined;
        await this.waitFor(consumer.inFlight, `cancel of queue '${spec.name}'`);
      },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stats.connected = false;
    const inFlight = new Set<Promise<void>>();
    for (const queue of this.queues.values()) {
      if (!queue.consumer) continue;
      queue.consumer.active = false;
      queue.consumer.inFlight.forEach((p) => inFlight.add(p));
      queue.consumer = undefined;
    }
    await this.waitFor(inFlight, 'close');
  }

  private declare(spec: QueueSpec): QueueState {
    const prefetch = spec.prefetch ?? DEFAULT_PREFETCH;
    if (!Number.isInteger(prefetch) || prefetch < 1) throw new RangeError(`prefetch must be a positive integer, got ${prefetch}`);
    let queue = this.queues.get(spec.name);
    if (!queue) {
      queue = { spec: { name: spec.name, prefetch }, bindings: new Set(), messages: [], drainScheduled: false };
      this.queues.set(spec.name, queue);
    }
    queue.spec.prefetch = prefetch;
    spec.bindings.forEach((b) => queue.bindings.add(b));
    return queue;
  }

  private deliveryOf(encoded: EncodedMessage, routingKey: string): InboundMessage {
    // Decoding per queue gives every consumer its own payload object, as separate deliveries would.
    this.stats.messagesDelivered++;
    this.stats.bytesDelivered += encoded.content.length;
    return decodeMessage({ content: encoded.content, ...encoded.properties }, routingKey, false);
  }

  /** Deliveries start from a fresh macrotask, never inside `publish()` or `consume()`. */
  private scheduleDrain(queue: QueueState): void {
    if (queue.drainScheduled) return;
    queue.drainScheduled = true;
    setImmediate(() => {
      queue.drainScheduled = false;
      this.drain(queue);
    });
  }

  private drain(queue: QueueState): void {
    const consumer = queue.consumer;
    while (consumer?.active && consumer.inFlight.size < queue.spec.prefetch && queue.messages.length > 0) {
      const message = queue.messages.shift()!;
      const run: Promise<void> = this.handle(queue, consumer, message).finally(() => {
        consumer.inFlight.delete(run);
        this.scheduleDrain(queue);
      });
      consumer.inFlight.add(run);
    }
  }

  private async handle(queue: QueueState, consumer: Consumer, message: InboundMessage): Promise<void> {
    try {
      await consumer.handler(message);
    } catch (error) {
      const where = `message '${message.name}' (routing key '${message.routingKey}', id ${message.messageId}) on queue '${queue.spec.name}'`;
      if (settlementForFailure(error, message.redelivered) === 'requeue') {
        this.logger.warn(`${where}: handler asked for a requeue: ${describeError(error)}`);
        // Back to the head of the queue, as RabbitMQ puts a requeued message back in its place.
        queue.messages.unshift({ ...message, redelivered: true });
        return;
      }
      const reason = describeError(error);
      this.logger.error(`${where}: handler failed, dead-lettered: ${reason}`, (error as Error)?.stack);
      this.deadLetterList.push({ queue: queue.spec.name, message, reason });
    }
  }

  private async waitFor(inFlight: Set<Promise<void>>, what: string): Promise<void> {
    if (inFlight.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.closeTimeoutMs);
    });
    const outcome = await Promise.race([Promise.allSettled([...inFlight]), timedOut]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      this.logger.warn(`${what}: ${inFlight.size} handler call(s) still running after ${this.closeTimeoutMs} ms`);
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('InMemoryBus is closed');
  }
}
