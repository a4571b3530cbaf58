import { BaseRpcContext } from '@nestjs/microservices';
import { InboundMessage } from '../message-bus';

/** `@Ctx()` of a handler served by `BusTransport`: the delivery's metadata and its attachment. */
export class BusContext extends BaseRpcContext<[InboundMessage]> {
  constructor(message: InboundMessage) {
    super([message]);
  }

  get message(): InboundMessage {
    return this.args[0];
  }
  get name(): string {
    return this.args[0].name;
  }
  get attachment(): Buffer | undefined {
    return this.args[0].attachment;
  }
  /** The attachment's SHA-256 where the bus has verified the bytes against it (a chunked transfer); see InboundMessage. */
  get attachmentSha256(): string | undefined {
    return this.args[0].attachmentSha256;
  }
  /** Broker-validated identity of the publisher (AMQP `user_id`). */
  get userId(): string | undefined {
    return this.args[0].userId;
  }
  get routingKey(): string {
    return this.args[0].routingKey;
  }
  get messageId(): string {
    return this.args[0].messageId;
  }
  get redelivered(): boolean {
    return this.args[0].redelivered;
  }
}
