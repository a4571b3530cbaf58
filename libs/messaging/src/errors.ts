import { RpcException } from '@nestjs/microservices';

/**
 * Thrown by a handler to have the message delivered once more (nack with requeue). If the
 * message was already redelivered it is dead-lettered instead, so a poison message cannot loop.
 *
 * It is an `RpcException` whose error object is the exception itself, so that Nest's RPC
 * exception filter passes it through unchanged and `BusTransport` still recognises it.
 */
export class RequeueError extends RpcException {
  constructor(message = 'handler asked for the message to be requeued', options?: { cause?: unknown }) {
    super(message);
    this.name = 'RequeueError';
    if (options?.cause !== undefined) Object.defineProperty(this, 'cause', { value: options.cause });
  }

  override getError(): object {
    return this;
  }
}

/** Publishing refused before anything reached the broker: the encoded message is too large. */
export class MessageTooLargeError extends Error {
  constructor(
    readonly messageName: string,
    readonly bytes: number,
    readonly maxBytes: number,
  ) {
    super(
      `message '${messageName}' is ${bytes} bytes, above the ${maxBytes}-byte limit; ` +
        'chunk the attachment or raise maxMessageBytes (and the broker max_message_size)',
    );
    this.name = 'MessageTooLargeError';
  }
}

/** A delivery that does not follow the wire format (bad JSON, missing type, ...). */
export class UndecodableMessageError extends Error {
  constructor(reason: string) {
    super(`undecodable message: ${reason}`);
    this.name = 'UndecodableMessageError';
  }
}

/** Connecting to the broker failed or timed out; the message names the host, never the password. */
export class BrokerConnectionError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message);
    this.name = 'BrokerConnectionError';
    if (options?.cause !== undefined) Object.defineProperty(this, 'cause', { value: options.cause });
  }
}
