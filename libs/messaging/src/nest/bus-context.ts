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
