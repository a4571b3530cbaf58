import { Logger } from '@nestjs/common';
import { AmqpConnectionManager, ChannelWrapper, connect as connectManager } from 'amqp-connection-manager';
import type { Channel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import { describeBrokerUrl } from './broker-url';
import { coalesceWrites } from './coalesced-writes';
import { BrokerConnectionError } from './errors';
import {
  DEFAULT_CLOSE_TIMEOUT_MS,
  DEFAULT_DEAD_LETTER_EXCHANGE,
  DEFAULT_EXCHANGE,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_PREFETCH,
  InboundMessage,
  MessageBus,
  MessageHandler,
  emptyBusStats,
  OutboundMessage,
  QueueSpec,
  Subscription,
} from './message-bus';
import { BusLogger, describeError, settlementForFailure } from './settlement';
import { CHUNK_HEADER, ChunkAssembler, ChunkRejectedError, DEFAULT_CHUNK_BYTES, planChunks } from './chunking';
import { decodeMessage, EncodedMessage, encodeMessage } from './wire-format';

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const MAX_PUBLISH_ATTEMPTS = 5;
/** Chunks of one large attachment awaiting their publisher confirms at once. */
const CHUNKS_IN_FLIGHT = 4;
const DEFAULT_RECONNECT_S = 1;

export interface RabbitMqBusOptions {
  /** Topic exchange every message is published to; default `fl.events`. */
  exchange?: string;
  /** Fanout exchange every consumer queue dead-letters to; default `fl.dead-letter`. */
  deadLetterExchange?: string;
  /** Queue bound to the dead-letter exchange; defaults to the exchange's name. */
  deadLetterQueue?: string;
  /** Shown in the RabbitMQ management UI and `rabbitmqctl list_connections`. */
  connectionName?: string;
  heartbeatIntervalInSeconds?: number;
  /**
   * Wait between reconnect attempts; default 1 s. (amqp-connection-manager's default, the heartbeat
   * interval, left a process thawed after a freeze, whose connection the broker had closed, mute
   * for 5 s: its answers waited for the reconnect.)
   */
  reconnectTimeInSeconds?: number;
  /** Set as `user_id` on every published message; RabbitMQ rejects it unless it is the connection's user. */
  userId?: string;
  /**
   * `declare` (default): create the exchanges and the dead-letter queue if missing. `check`: only
   * check that they exist, for a user without the right to configure them (an edge worker's own
   * broker user may configure nothing but its queue); connecting then fails if they are missing.
   */
  topology?: 'declare' | 'check';
  /** For `amqps://` URLs: CA bundle to verify the broker with, and a client certificate and key if the broker asks for one. */
  tls?: BrokerTls;
  /** How long `connect()` (and each later socket connect) may take; default 10 s. */
  connectTimeoutMs?: number;
  maxMessageBytes?: number;
  /**
   * Attachments larger than this travel as chunks of this size (16 MiB by default), each confirmed by
   * the broker, and are reassembled and checked (SHA-256) by the consumer: models beyond RabbitMQ's
   * message size limit, without holding more than one copy on either side.
   */
  chunkBytes?: number;
  /** Bytes a consumer may hold in unfinished chunked attachments at once, in memory and in files (default 4 GiB). */
  maxReassemblyBytes?: number;
  /** A chunked attachment not complete this long after its first chunk is given up (default 10 min). */
  reassemblyTimeoutMs?: number;
  /**
   * Bytes of chunked attachments held in memory at once, being reassembled or handled; one beyond
   * it waits in a file until the memory is free (ChunkAssembler `memoryBytes`). Default: no bound.
   */
  reassemblyMemoryBytes?: number;
  /** Folder of those files (default: the system's temporary folder). */
  reassemblySpillDir?: string;
  /** Longest `close()` / `cancel()` waits for handler calls and confirms in flight. */
  closeTimeoutMs?: number;
  /**
   * The broker deletes a consumer queue this bus declares once it has gone this long without a
   * consumer (RabbitMQ's `x-expires`), e.g. the queue of an instance that never comes back, with the
   * messages in it (they are not dead-lettered). Unset or 0: never. The dead-letter queue never expires.
   */
  queueExpiresMs?: number;
  /**
   * TCP_NODELAY on the broker socket. Default true: with Nagle on, a round trip through the broker
   * takes tens of milliseconds instead of about one. Only the benchmark turns it off.
   */
  noDelay?: boolean;
  logger?: BusLogger;
}

export interface BrokerTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  passphrase?: string;
}

interface ConsumerState {
  queue: string;
  /** The queue's bindings, declared again on every reconnect; `addBinding` adds to them. */
  bindings: string[];
  active: boolean;
  inFlight: Set<Promise<void>>;
  channel?: Channel;
  consumerTag?: string;
  wrapper: ChannelWrapper;
  cancel(): Promise<void>;
}

/**
 * `MessageBus` over RabbitMQ. amqp-connection-manager owns the connection: after a broker
 * restart it reconnects, re-runs the channel setups (which re-declare the topology and the
 * consumers) and sends what was published meanwhile. Publishing uses a confirm channel; each
 * consumer gets its own channel so that `prefetch` applies per queue.
 */
export class RabbitMqBus implements MessageBus {
  private readonly exchange: string;
  private readonly deadLetterExchange: string;
  private readonly deadLetterQueue: string;
  private readonly maxMessageBytes: number;
  private readonly closeTimeoutMs: number;
  private readonly readyTimeoutMs: number;
  private readonly logger: BusLogger;
  private readonly consumers = new Set<ConsumerState>();
  private readonly pendingPublishes = new Set<Promise<unknown>>();
  private publisher!: ChannelWrapper;
  private publisherChannelErrors = 0;
  private lastPublisherChannelError?: Error;
  private recoveryTimer?: NodeJS.Timeout;
  private closing?: Promise<void>;
  private readonly assembler: ChunkAssembler;
  private expiryTimer?: NodeJS.Timeout;
  /** Queues found declared with other arguments: the warning comes once, not at every reconnect. */
  private readonly mismatchedQueues = new Set<string>();
  readonly stats = emptyBusStats();

  private constructor(
    private readonly manager: AmqpConnectionManager,
    private readonly brokerName: string,
    private readonly options: RabbitMqBusOptions,
  ) {
    this.exchange = options.exchange ?? DEFAULT_EXCHANGE;
    this.deadLetterExchange = options.deadLetterExchange ?? DEFAULT_DEAD_LETTER_EXCHANGE;
    this.deadLetterQueue = options.deadLetterQueue ?? this.deadLetterExchange;
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    this.readyTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.logger = options.logger ?? new Logger(RabbitMqBus.name);
    const timeoutMs = options.reassemblyTimeoutMs ?? 10 * 60_000;
    this.assembler = new ChunkAssembler({
      maxBytes: options.maxReassemblyBytes ?? 4 * 1024 ** 3,
      timeoutMs,
      memoryBytes: options.reassemblyMemoryBytes,
      spillDir: options.reassemblySpillDir,
    });
    this.expiryTimer = setInterval(() => {
      for (const t of this.assembler.expire()) {
        this.logger.error(`chunked attachment ${t.transfer} (${t.bytes} bytes) incomplete after ${timeoutMs} ms: given up`);
      }
    }, Math.min(timeoutMs, 60_000));
    this.expiryTimer.unref();
  }

  /**
   * Connects, declares the topology and returns once the publisher channel is ready. Rejects with
   * a `BrokerConnectionError` naming the broker (without password) if that takes longer than
   * `connectTimeoutMs`, or at once if the broker refuses the credentials.
   */
  static async connect(url: string, options: RabbitMqBusOptions = {}): Promise<RabbitMqBus> {
    const brokerName = describeBrokerUrl(url);
    const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const manager = connectManager([url], {
      heartbeatIntervalInSeconds: options.heartbeatIntervalInSeconds ?? 5,
      reconnectTimeInSeconds: options.reconnectTimeInSeconds ?? DEFAULT_RECONNECT_S,
      connectionOptions: {
        noDelay: options.noDelay ?? true,
        timeout: timeoutMs,
        ...(options.connectionName ? { clientProperties: { connection_name: options.connectionName } } : {}),
        ...tlsSocketOptions(url, options.tls),
      },
    });
    // Before the first connect: every connection, reconnects included, sends a pass of frames in one system call.
    manager.on('connect', ({ connection }) => coalesceWrites(connection));
    let lastFailure: unknown;
    const onConnectFailed = ({ err }: { err: Error }) => {
      lastFailure = err;
    };
    manager.on('connectFailed', onConnectFailed);
    try {
      await manager.connect({ timeout: timeoutMs });
    } catch (err) {
      await manager.close().catch(() => undefined);
      throw new BrokerConnectionError(
        `cannot connect to RabbitMQ at ${brokerName} within ${timeoutMs} ms: ${(lastFailure as Error)?.message ?? (err as Error).message}`,
        { cause: lastFailure ?? err },
      );
    } finally {
      manager.removeListener('connectFailed', onConnectFailed);
    }
    const bus = new RabbitMqBus(manager, brokerName, options);
    try {
      await bus.start();
    } catch (err) {
      await manager.close().catch(() => undefined);
      throw new BrokerConnectionError(`cannot set up messaging on ${brokerName}: ${describeError(err)}`, { cause: err });
    }
    return bus;
  }

  async publish(routingKey: string, msg: OutboundMessage): Promise<void> {
    this.assertOpen();
    const chunkBytes = this.options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    const encode = (m: OutboundMessage, chunk?: Parameters<typeof encodeMessage>[1]['chunk']) =>
      encodeMessage(m, { maxBytes: this.maxMessageBytes, userId: this.options.userId, chunk });
    if (!msg.attachment || msg.attachment.length <= chunkBytes) {
      await this.publishEncoded(routingKey, msg.name, encode(msg));
      return;
    }
    // A few chunks awaiting confirms at once: the broker's pace sets ours, memory stays bounded.
    const inFlight = new Set<Promise<void>>();
    let failure: unknown;
    const { attachmentSha256, ...message } = msg;
    for (const c of await planChunks(msg.attachment, chunkBytes, attachmentSha256)) {
      if (failure) break;
      const p: Promise<void> = this.publishEncoded(routingKey, msg.name, encode({ ...message, attachment: c.data }, c.info)).then(
        () => void inFlight.delete(p),
        (err) => {
          inFlight.delete(p);
          failure ??= err;
        },
      );
      inFlight.add(p);
      if (inFlight.size >= CHUNKS_IN_FLIGHT) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    if (failure) throw failure;
  }

  private async publishEncoded(routingKey: string, name: string, { content, properties }: EncodedMessage): Promise<void> {
    this.stats.messagesPublished++;
    this.stats.bytesPublished += content.length;
    for (let attempt = 1; ; attempt++) {
      const channelErrorsBefore = this.publisherChannelErrors;
      // Buffered by the channel wrapper while disconnected; resolves on the broker's confirm.
      const confirmed = this.publisher.publish(this.exchange, routingKey, content, properties);
      this.pendingPublishes.add(confirmed);
      try {
        await confirmed;
        return;
      } catch (err) {
        const channelError = this.publisherChannelErrors > channelErrorsBefore ? this.lastPublisherChannelError : undefined;
        // A connection lost before the confirm arrived rejects with 'channel closed' (amqp-connection-manager
        // issue #369): publish again once reconnected, accepting a possible duplicate (consumers are idempotent).
        // When the broker closed the channel because of this message, retrying would fail the same way.
        if ((err as Error)?.message === 'channel closed' && !channelError && !this.closing && attempt < MAX_PUBLISH_ATTEMPTS) {
          this.logger.warn(`'${name}' to '${routingKey}' unconfirmed when the connection dropped; publishing again`);
          continue;
        }
        const reason = channelError ? channelError.message : describeError(err);
        throw new Error(`publishing '${name}' to '${routingKey}' on ${this.brokerName} failed: ${reason}`, { cause: channelError ?? err });
      } finally {
        this.pendingPublishes.delete(confirmed);
      }
    }
  }

  /** Declares a consumer queue and its bindings without consuming, so that it starts collecting messages. */
  async declareQueue(spec: QueueSpec): Promise<void> {
    this.assertOpen();
    await this.publisher.waitForConnect();
    await this.declareConsumerQueue(spec.name);
    for (const pattern of spec.bindings) await this.publisher.bindQueue(spec.name, this.exchange, pattern);
  }

  /**
   * Binds on a channel of its own: a broker that refuses the binding (ACCESS_REFUSED) closes only
   * that channel, not a consumer's or the publisher's. Once bound, the pattern joins the consumer's
   * bindings, so a reconnect declares it again.
   */
  async addBinding(queue: string, pattern: string): Promise<void> {
    this.assertOpen();
    await this.publisher.waitForConnect();
    const connection = this.manager.connection;
    if (!connection) throw new Error(`cannot bind queue '${queue}' to '${pattern}': not connected to ${this.brokerName}`);
    let closedWith: Error | undefined;
    const channel = await connection.createChannel();
    channel.on('error', (err: Error) => (closedWith = err));
    try {
      await channel.bindQueue(queue, this.exchange, pattern);
    } catch (err) {
      throw new Error(`binding queue '${queue}' to '${pattern}' on ${this.brokerName} failed: ${describeError(closedWith ?? err)}`, { cause: closedWith ?? err });
    } finally {
      await channel.close().catch(() => undefined);
    }
    for (const c of this.consumers) if (c.queue === queue && !c.bindings.includes(pattern)) c.bindings.push(pattern);
  }

  async consume(spec: QueueSpec, handler: MessageHandler): Promise<Subscription> {
    this.assertOpen();
    const prefetch = spec.prefetch ?? DEFAULT_PREFETCH;
    if (!Number.isInteger(prefetch) || prefetch < 1) throw new RangeError(`prefetch must be a positive integer, got ${prefetch}`);
    const state: ConsumerState = {
      queue: spec.name,
      bindings: [...spec.bindings],
      active: true,
      inFlight: new Set(),
      wrapper: this.manager.createChannel({
        name: `consumer:${spec.name}`,
        confirm: false,
        // Runs again on every reconnect: the queue, its bindings and the consumer come back.
        setup: async (channel: Channel) => {
          channel.on('error', (err: Error) => this.onChannelClosedByBroker(`consumer of queue '${spec.name}'`, err));
          await this.declareTopology(channel);
          await this.declareConsumerQueue(spec.name);
          for (const pattern of state.bindings) await channel.bindQueue(spec.name, this.exchange, pattern);
          await channel.prefetch(prefetch);
          if (!state.active) return;
          const { consumerTag } = await channel.consume(spec.name, (raw) => this.onDelivery(state, channel, raw, handler), {
            noAck: false,
          });
          state.channel = channel;
          state.consumerTag = consumerTag;
        },
      }),
      cancel: async () => {
        if (!state.active) return;
        state.active = false;
        const { channel, consumerTag } = state;
        if (channel && consumerTag) await channel.cancel(consumerTag).catch(() => undefined);
        await this.waitFor(state.inFlight, `cancel of queue '${spec.name}'`);
        await state.wrapper.close().catch(() => undefined);
        this.consumers.delete(state);
      },
    };
    this.watchChannel(state.wrapper);
    this.consumers.add(state);
    try {
      await this.channelReady(state.wrapper, `consumer of queue '${spec.name}'`);
    } catch (err) {
      state.active = false;
      this.consumers.delete(state);
      await state.wrapper.close().catch(() => undefined);
      throw new Error(`cannot consume queue '${spec.name}' on ${this.brokerName}: ${describeError(err)}`, { cause: err });
    }
    return { cancel: state.cancel };
  }

  /** Cancels the consumers, waits (bounded) for their handlers and unconfirmed publishes, then disconnects. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.consumers].map((c) => c.cancel()));
      await this.waitFor(this.pendingPublishes, 'close (unconfirmed publishes)');
      clearTimeout(this.recoveryTimer);
      clearInterval(this.expiryTimer);
      await this.manager.close();
    })();
    return this.closing;
  }

  private async start(): Promise<void> {
    // connect() may have seen the first connection already: only later ones are reconnects.
    let connects = this.manager.isConnected() ? 1 : 0;
    this.stats.connected = this.manager.isConnected();
    this.manager.on('connect', () => {
      this.stats.connected = true;
      if (++connects > 1) this.stats.reconnects++;
    });
    this.manager.on('disconnect', ({ err }) => {
      this.stats.connected = false;
      if (!this.closing) this.logger.warn(`disconnected from ${this.brokerName}: ${err?.message ?? 'closed'}; reconnecting`);
    });
    this.manager.on('connect', () => this.logger.log(`connected to ${this.brokerName}`));
    // E.g. ACCESS_REFUSED once this user was deleted (a revoked site): say why reconnecting does not succeed.
    // Once per reason and at most every 30 s: reconnect attempts come every second.
    let lastFailure = { reason: '', at: 0 };
    this.manager.on('connectFailed', ({ err }) => {
      const reason = err?.message ?? 'unknown error';
      if (this.closing || (reason === lastFailure.reason && Date.now() - lastFailure.at < 30_000)) return;
      lastFailure = { reason, at: Date.now() };
      this.logger.warn(`cannot reconnect to ${this.brokerName}: ${reason}`);
    });
    this.manager.on('blocked', ({ reason }) => this.logger.warn(`${this.brokerName} blocked publishing: ${reason}`));
    this.manager.on('unblocked', () => this.logger.log(`${this.brokerName} unblocked publishing`));
    this.publisher = this.manager.createChannel({
      name: 'publisher',
      confirm: true,
      setup: async (channel: ConfirmChannel) => {
        channel.on('error', (err: Error) => {
          this.publisherChannelErrors++;
          this.lastPublisherChannelError = err;
          this.onChannelClosedByBroker('publisher', err);
        });
        await this.declareTopology(channel);
      },
    });
    this.watchChannel(this.publisher);
    await this.channelReady(this.publisher, 'publisher channel');
  }

  /**
   * The broker closed one channel (not the connection): a message it refused (e.g. a foreign
   * user_id), an exchange deleted under us, a declaration that conflicts. amqp-connection-manager
   * only recreates channels after a reconnect (its issue #347), so force one, at most once per
   * reconnect interval, and let the setups re-declare everything.
   */
  private onChannelClosedByBroker(channelName: string, err: Error): void {
    this.logger.error(`RabbitMQ closed the ${channelName} channel: ${err.message}; reconnecting to restore it`);
    if (this.closing || this.recoveryTimer) return;
    const delayMs = (this.options.reconnectTimeInSeconds ?? this.options.heartbeatIntervalInSeconds ?? 5) * 1000;
    this.recoveryTimer = setTimeout(() => {
      this.recoveryTimer = undefined;
      if (!this.closing && this.manager.isConnected()) this.manager.reconnect();
    }, delayMs);
  }

  private async declareTopology(channel: Channel): Promise<void> {
    if (this.options.topology === 'check') {
      for (const exchange of [this.exchange, this.deadLetterExchange]) {
        await channel.checkExchange(exchange).catch((err: Error) => {
          throw new Error(
            `exchange '${exchange}' is missing or not readable on ${this.brokerName} (${err.message}); ` +
              'it is declared by the coordinator and the gateway: start one of them first',
            { cause: err },
          );
        });
      }
      return;
    }
    await channel.assertExchange(this.exchange, 'topic', { durable: true });
    await channel.assertExchange(this.deadLetterExchange, 'fanout', { durable: true });
    await channel.assertQueue(this.deadLetterQueue, { durable: true });
    await channel.bindQueue(this.deadLetterQueue, this.deadLetterExchange, '');
  }

  /** The arguments of every consumer queue this bus declares (not of the dead-letter queue). */
  private queueArguments(): Record<string, string | number> {
    const expiresMs = this.options.queueExpiresMs;
    return { 'x-dead-letter-exchange': this.deadLetterExchange, ...(expiresMs ? { 'x-expires': expiresMs } : {}) };
  }

  /**
   * Declares a consumer queue on a channel of its own: the broker closes the channel a declaration
   * fails on. A queue that exists with other arguments (declared by a release without `x-expires`,
   * or with another QUEUE_EXPIRES_S) cannot be declared again (PRECONDITION_FAILED), and the broker
   * never changes a queue's arguments: it is used as it is, messages and all (consuming and binding
   * need no declaration), and the log says once how to bring it in line.
   */
  private async declareConsumerQueue(name: string): Promise<void> {
    const connection = this.manager.connection;
    if (!connection) throw new Error(`cannot declare queue '${name}': not connected to ${this.brokerName}`);
    const onOwnChannel = async (op: (channel: Channel) => Promise<unknown>): Promise<void> => {
      let closedWith: Error | undefined;
      const channel = await connection.createChannel();
      channel.on('error', (err: Error) => (closedWith = err));
      try {
        await op(channel);
      } catch (err) {
        throw closedWith ?? err;
      } finally {
        await channel.close().catch(() => undefined);
      }
    };
    const args = this.queueArguments();
    try {
      await onOwnChannel((c) => c.assertQueue(name, { durable: true, arguments: args }));
      this.mismatchedQueues.delete(name);
    } catch (err) {
      if (!/PRECONDITION_FAILED/.test(describeError(err))) throw err;
      await onOwnChannel((c) => c.checkQueue(name));
      if (this.mismatchedQueues.has(name)) return;
      this.mismatchedQueues.add(name);
      // A policy reaches queues that exist already; where it and the argument both set one, the shorter expiry wins.
      const byPolicy = args['x-expires']
        ? `, or give it an expiry by a policy: rabbitmqctl set_policy -p <vhost> fl-queue-expiry '^fl\\.(worker|coordinator|gateway)\\.' ` +
          `'{"expires":${args['x-expires']}}' --apply-to queues`
        : '';
      this.logger.warn(
        `queue '${name}' exists on ${this.brokerName} with other arguments than ${JSON.stringify(args)} (${describeError(err)}); ` +
          `it is used as it is. To apply them, delete the queue while its app is stopped (the messages in it are lost)${byPolicy}`,
      );
    }
  }

  private onDelivery(state: ConsumerState, channel: Channel, raw: ConsumeMessage | null, handler: MessageHandler): void {
    if (raw === null) {
      // The broker cancelled the consumer, e.g. because the queue was deleted.
      this.logger.error(`RabbitMQ cancelled the consumer of queue '${state.queue}' (queue deleted?)`);
      return;
    }
    const settled = this.settle(state.queue, channel, raw, handler).finally(() => state.inFlight.delete(settled));
    state.inFlight.add(settled);
  }

  private async settle(queue: string, channel: Channel, raw: ConsumeMessage, handler: MessageHandler): Promise<void> {
    const { routingKey, redelivered } = raw.fields;
    let message: InboundMessage;
    try {
      this.stats.messagesDelivered++;
      this.stats.bytesDelivered += raw.content.length;
      message = decodeMessage({ content: raw.content, ...raw.properties }, routingKey, redelivered);
    } catch (err) {
      this.logger.error(`queue '${queue}', routing key '${routingKey}': ${describeError(err)}; dead-lettered`);
      this.reply(channel, raw, 'nack', false, queue);
      return;
    }
    let reassembled: Buffer | undefined;
    if (message.chunk) {
      // Each chunk is acknowledged once copied into place; the handler sees the whole message once.
      let whole: Buffer | null;
      try {
        whole = await this.assembler.accept(message.chunk, message.attachment!);
      } catch (err) {
        if (!(err instanceof ChunkRejectedError)) throw err;
        this.logger.error(`queue '${queue}', message '${message.name}' (routing key '${routingKey}'): ${err.message}; dead-lettered`);
        this.reply(channel, raw, 'nack', false, queue);
        return;
      }
      if (!whole) {
        this.reply(channel, raw, 'ack', false, queue);
        return;
      }
      const { chunk, ...rest } = message;
      message = { ...rest, attachment: whole, attachmentSha256: chunk.sha256 };
      reassembled = whole;
    }
    // A reassembled message cannot be requeued (its other chunks are acknowledged): a failure dead-letters
    // its last chunk, which carries the payload, so the failure is on record.
    const wasChunked = message.attachment !== undefined && raw.properties.headers?.[CHUNK_HEADER] !== undefined;
    try {
      await handler(message);
    } catch (err) {
      const where = `message '${message.name}' (routing key '${routingKey}', id ${message.messageId}) on queue '${queue}'`;
      if (!wasChunked && settlementForFailure(err, redelivered) === 'requeue') {
        this.logger.warn(`${where}: handler asked for a requeue: ${describeError(err)}`);
        this.reply(channel, raw, 'nack', true, queue);
      } else {
        this.logger.error(`${where}: handler failed, dead-lettered: ${describeError(err)}`, (err as Error)?.stack);
        this.reply(channel, raw, 'nack', false, queue);
      }
      return;
    } finally {
      if (reassembled) this.assembler.release(reassembled);
    }
    this.reply(channel, raw, 'ack', false, queue);
  }

  /** Acks on the channel the message came from; if that channel is gone the broker redelivers anyway. */
  private reply(channel: Channel, raw: ConsumeMessage, kind: 'ack' | 'nack', requeue: boolean, queue: string): void {
    try {
      if (kind === 'ack') channel.ack(raw);
      else channel.nack(raw, false, requeue);
    } catch (err) {
      this.logger.warn(
        `could not ${kind} a '${raw.properties.type}' message on queue '${queue}' (${describeError(err)}); ` +
          'the broker will redeliver it',
      );
    }
  }

  private watchChannel(wrapper: ChannelWrapper): void {
    // Without a listener an 'error' event would be thrown; setup failures are reported here.
    wrapper.on('error', (err: Error) => this.logger.error(`channel ${wrapper.name}: ${describeError(err)}`));
  }

  private channelReady(wrapper: ChannelWrapper, what: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        wrapper.removeListener('error', done);
        if (err) reject(err);
        else resolve();
      };
      const timer = setTimeout(() => done(new Error(`${what} not ready within ${this.readyTimeoutMs} ms`)), this.readyTimeoutMs);
      wrapper.once('error', done);
      wrapper.waitForConnect().then(() => done(), done);
    });
  }

  private async waitFor(pending: Set<Promise<unknown>>, what: string): Promise<void> {
    if (pending.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.closeTimeoutMs);
    });
    const outcome = await Promise.race([Promise.allSettled([...pending]), timedOut]);
    clearTimeout(timer);
    if (outcome === 'timeout') this.logger.warn(`${what}: ${pending.size} still pending after ${this.closeTimeoutMs} ms`);
  }

  private assertOpen(): void {
    if (this.closing) throw new Error('RabbitMqBus is closed');
  }
}

/** Socket options for amqplib: TLS material only for `amqps://` URLs; given for a plain URL it is a mistake worth refusing. */
function tlsSocketOptions(url: string, tls: BrokerTls | undefined): Record<string, unknown> {
  if (!tls || Object.values(tls).every((v) => v === undefined)) return {};
  if (!url.startsWith('amqps://')) {
    throw new BrokerConnectionError(`TLS certificates are configured but the RabbitMQ URL ${describeBrokerUrl(url)} is not amqps://`);
  }
  return Object.fromEntries(Object.entries(tls).filter(([, v]) => v !== undefined));
}
