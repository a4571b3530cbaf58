import { randomUUID } from 'node:crypto';
import { CHUNK_HEADER, ChunkInfo, parseChunkInfo } from './chunking';
import { MessageTooLargeError, UndecodableMessageError } from './errors';
import { InboundMessage, OutboundMessage } from './message-bus';

export const JSON_CONTENT_TYPE = 'application/json';
export const BINARY_CONTENT_TYPE = 'application/octet-stream';
/** With an attachment the body is the raw bytes and the payload JSON travels in this header. */
export const PAYLOAD_HEADER = 'x-fl-payload';
/**
 * AMQP headers must fit in one frame (RabbitMQ's frame_max is 128 KiB by default); the payload
 * beside an attachment is control data, so keep it well below that.
 */
export const MAX_PAYLOAD_HEADER_BYTES = 64 * 1024;

export interface EncodedMessage {
  content: Buffer;
  properties: {
    type: string;
    contentType: string;
    headers: Record<string, string>;
    messageId: string;
    timestamp: number;
    persistent: true;
    userId?: string;
  };
}

/** The properties of a delivery that decoding reads (a subset of amqplib's MessageProperties). */
export interface RawDelivery {
  content: Buffer;
  type?: string;
  contentType?: string;
  headers?: Record<string, unknown>;
  messageId?: string;
  userId?: string;
}

/** `chunk`: the attachment is one chunk of a larger one, described in the `x-fl-chunk` header. */
export function encodeMessage(msg: OutboundMessage, opts: { maxBytes: number; userId?: string; chunk?: ChunkInfo }): EncodedMessage {
  if (typeof msg.name !== 'string' || msg.name === '') {
    throw new TypeError('message name must be a non-empty string');
  }
  if (!isPlainObject(msg.payload)) {
    throw new TypeError(`payload of message '${msg.name}' must be a JSON object`);
  }
  const payloadJson = JSON.stringify(msg.payload);
  const properties: EncodedMessage['properties'] = {
    type: msg.name,
    contentType: JSON_CONTENT_TYPE,
    headers: {},
    messageId: randomUUID(),
    // AMQP timestamps are whole seconds.
    timestamp: Math.floor(Date.now() / 1000),
    persistent: true,
    ...(opts.userId !== undefined ? { userId: opts.userId } : {}),
  };
  let content: Buffer;
  if (msg.attachment !== undefined) {
    if (!Buffer.isBuffer(msg.attachment)) {
      throw new TypeError(`attachment of message '${msg.name}' must be a Buffer`);
    }
    const headerBytes = Buffer.byteLength(payloadJson);
    if (headerBytes > MAX_PAYLOAD_HEADER_BYTES) {
      throw new MessageTooLargeError(`${msg.name} (payload beside an attachment)`, headerBytes, MAX_PAYLOAD_HEADER_BYTES);
    }
    content = msg.attachment;
    properties.contentType = BINARY_CONTENT_TYPE;
    properties.headers[PAYLOAD_HEADER] = payloadJson;
    if (opts.chunk) properties.headers[CHUNK_HEADER] = JSON.stringify(opts.chunk);
  } else {
    content = Buffer.from(payloadJson);
  }
  if (content.length > opts.maxBytes) {
    throw new MessageTooLargeError(msg.name, content.length, opts.maxBytes);
  }
  return { content, properties };
}

export function decodeMessage(raw: RawDelivery, routingKey: string, redelivered: boolean): InboundMessage {
  if (typeof raw.type !== 'string' || raw.type === '') {
    throw new UndecodableMessageError('missing message name (AMQP type property)');
  }
  if (typeof raw.messageId !== 'string' || raw.messageId === '') {
    throw new UndecodableMessageError(`message '${raw.type}' has no messageId`);
  }
  let payloadJson: string;
  let attachment: Buffer | undefined;
  let chunk: ChunkInfo | undefined;
  if (raw.contentType === JSON_CONTENT_TYPE) {
    payloadJson = raw.content.toString('utf8');
  } else if (raw.contentType === BINARY_CONTENT_TYPE) {
    const header = raw.headers?.[PAYLOAD_HEADER];
    if (typeof header === 'string') payloadJson = header;
    else if (Buffer.isBuffer(header)) payloadJson = header.toString('utf8');
    else throw new UndecodableMessageError(`message '${raw.type}' has an attachment but no ${PAYLOAD_HEADER} header`);
    attachment = raw.content;
    if (raw.headers?.[CHUNK_HEADER] !== undefined) {
      try {
        chunk = parseChunkInfo(raw.headers[CHUNK_HEADER]);
      } catch (err) {
        throw new UndecodableMessageError(`message '${raw.type}': ${(err as Error).message}`);
      }
    }
  } else {
    throw new UndecodableMessageError(`message '${raw.type}' has unsupported content type '${raw.contentType}'`);
  }
  let payload: unknown;
  try {
    payload = JSON.parse(payloadJson);
  } catch (err) {
    throw new UndecodableMessageError(`message '${raw.type}' payload is not JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(payload)) {
    throw new UndecodableMessageError(`message '${raw.type}' payload is not a JSON object`);
  }
  return {
    name: raw.type,
    payload,
    ...(attachment !== undefined ? { attachment } : {}),
    routingKey,
    redelivered,
    ...(typeof raw.userId === 'string' ? { userId: raw.userId } : {}),
    messageId: raw.messageId,
    ...(chunk ? { chunk } : {}),
  };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value);
}
