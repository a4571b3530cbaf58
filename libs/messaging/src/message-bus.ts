import type { ChunkInfo } from './chunking';

/** A message as a producer hands it to the bus. */
export interface OutboundMessage {
  /** Message name, e.g. `round.fit`; travels in the AMQP `type` property. */
  name: string;
  /** Small JSON control data. */
  payload: Record<string, unknown>;
  /** Binary data (safetensors weights, model bundles): never JSON. */
  attachment?: Buffer;
  /**
   * The attachment's SHA-256 (hex), where the producer has it already: a
   * chunked publish sends it with the chunks instead of hashing the
   * attachment again (0.77 s per GiB here). A wrong one makes the receiver
   * refuse the transfer.
   */
  attachmentSha256?: string;
}

/** A message as a consumer receives it. */
export interface InboundMessage extends OutboundMessage {
  routingKey: string;
  redelivered: boolean;
  /** AMQP `user_id` property; RabbitMQ checks it against the publishing connection's user. */
  userId?: string;
  messageId: string;
  /** One chunk of a large attachment; only between the bus and its reassembly, handlers never see it. */
  chunk?: ChunkInfo;
  /**
   * Set where the bus has checked the attachment against this SHA-256 (hex):
   * a chunked transfer, reassembled and verified. A handler that must check
   * the attachment against a hash it was given may compare with this one
   * instead of hashing the bytes again.
   */
  attachmentSha256?: string;
}

export interface QueueSpec {
  name: string;
  /** Topic patterns bound on the events exchange (`*` = one word, `#` = zero or more). */
  bindings: string[];
  /** Handler calls in flight at once on this queue; default 1 (strictly sequential). */
  prefetch?: number;
  exclusive?: false;
}

export type MessageHandler = (msg: InboundMessage) => Promise<void>;

export interface Subscription {
  /** Stops deliveries and waits for the handler calls in flight; queued messages stay in the queue. */
  cancel(): Promise<void>;
}

/** What a bus has done since it was created: for health checks and metrics. */
export interface BusStats {
  /** Whether the bus can reach its broker now. */
  connected: boolean;
  /** Connections re-established after a loss. */
  reconnects: number;
  messagesPublished: number;
  /** Bytes of message bodies published (JSON payloads and binary attachments). */
  bytesPublished: number;
  messagesDelivered: number;
  bytesDelivered: number;
}

export function emptyBusStats(): BusStats {
  return { connected: true, reconnects: 0, messagesPublished: 0, bytesPublished: 0, messagesDelivered: 0, bytesDelivered: 0 };
}

export interface MessageBus {
  /** Live counters; read them, do not change them. */
  readonly stats: BusStats;
  /** Resolves once the broker has taken responsibility for the message (publisher confirm, persistent). */
  publish(routingKey: string, msg: OutboundMessage): Promise<void>;
  /**
   * Declares the queue with its bindings and consumes it. Handler resolves: ack. Handler throws:
   * dead-letter (a `RequeueError` requeues once first). Undecodable messages are dead-lettered.
   */
  consume(queue: QueueSpec, handler: MessageHandler): Promise<Subscription>;
  /**
   * Binds one more topic pattern to a queue this bus consumes or declared, e.g. a worker that starts
   * serving a use case learned at run time. Kept across reconnects; rejects (changing nothing) when the
   * broker refuses it.
   */
  addBinding(queue: string, pattern: string): Promise<void>;
  close(): Promise<void>;
}

export const DEFAULT_EXCHANGE = 'fl.events';
export const DEFAULT_DEAD_LETTER_EXCHANGE = 'fl.dead-letter';
/** RabbitMQ's default `max_message_size`; larger payloads must be chunked by the caller. */
export const DEFAULT_MAX_MESSAGE_BYTES = 128 * 1024 * 1024;
export const DEFAULT_PREFETCH = 1;
export const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;
