import { CustomTransportStrategy, MessageHandler as NestMessageHandler, Server } from '@nestjs/microservices';
import { EventEmitter } from 'node:events';
import { isObservable, lastValueFrom } from 'rxjs';
import { RequeueError } from '../errors';
import { InboundMessage, MessageBus, QueueSpec, Subscription } from '../message-bus';
import { describeError } from '../settlement';
import { BusContext } from './bus-context';

export type BusTransportQueue = Omit<QueueSpec, 'bindings'> & { bindings: string[] };
export type BusTransportStatus = 'connected' | 'disconnected';

/** Events `BusTransport.on()` accepts. */
export type BusTransportEvents = {
  /** A message was refused (no handler, or the handler failed); the bus dead-letters or requeues it. */
  'handler-error': (error: Error, message: InboundMessage) => void;
};

/** No `@EventPattern` matches the message's name. */
export class NoHandlerError extends Error {
  constructor(messageName: string, queue: string) {
    super(`no @EventPattern handler for message '${messageName}' on queue '${queue}'`);
    this.name = 'NoHandlerError';
  }
}

/** A Nest handler's observable or promise failed; `detail` is what Nest's exception filter produced. */
export class HandlerFailedError extends Error {
  constructor(
    messageName: string,
    readonly detail: unknown,
  ) {
    super(`handler of '${messageName}' failed: ${describeError(detail)}`);
    this.name = 'HandlerFailedError';
  }
}

/**
 * Nest custom transport over a `MessageBus`: consumes one queue and dispatches each message to the
 * `@EventPattern` whose pattern equals the message NAME (not the routing key). `@Payload()` is the
 * JSON payload, `@Ctx()` a `BusContext`. When the handler (or a pipe, guard or interceptor before it)
 * fails, the message is dead-lettered by the bus; throwing `RequeueError` asks for one redelivery.
 *
 * The bus belongs to whoever created it: `close()` stops consuming but leaves the bus open.
 * Events only: `@MessagePattern` handlers are invoked like event handlers and their result dropped.
 */
export class BusTransport
  extends Server<BusTransportEvents, BusTransportStatus>
  implements CustomTransportStrategy
{
  private subscription?: Subscription;
  private readonly events = new EventEmitter();
  /**
   * Handlers by message name, as `getHandlerByPattern` finds them. Nest's lookup first tries
   * `JSON.parse` on the name, which throws (a SyntaxError with its stack) for every ordinary name
   * such as 'round.fit': a measurable share of a small message's handling. Emptied whenever the
   * number of registered handlers changes; names without a handler are not remembered.
   */
  private readonly handlersByName = new Map<string, NestMessageHandler>();
  private handlersCounted = -1;

  constructor(
    private readonly bus: MessageBus,
    private readonly queue: BusTransportQueue,
  ) {
    super();
  }

  async listen(callback: (err?: unknown, ...optionalParams: unknown[]) => void): Promise<void> {
    for (const [pattern, handler] of this.getHandlers()) {
      if (!handler.isEventHandler) {
        this.logger.warn(`@MessagePattern('${pattern}') on queue '${this.queue.name}': BusTransport serves events only; its reply is dropped`);
      }
    }
    try {
      this.subscription = await this.bus.consume({ ...this.queue }, (message) => this.dispatch(message));
    } catch (err) {
      callback(err);
      return;
    }
    this._status$.next('connected');
    callback();
  }

  async close(): Promise<void> {
    const subscription = this.subscription;
    this.subscription = undefined;
    await subscription?.cancel();
    this._status$.next('disconnected');
  }

  on<K extends keyof BusTransportEvents = keyof BusTransportEvents, C extends BusTransportEvents[K] = BusTransportEvents[K]>(
    event: K,
    callback: C,
  ): void {
    this.events.on(event, callback);
  }

  /** The underlying `MessageBus`. */
  unwrap<T>(): T {
    return this.bus as T;
  }

  private handlerFor(name: string): NestMessageHandler | null {
    if (this.messageHandlers.size !== this.handlersCounted) {
      this.handlersByName.clear();
      this.handlersCounted = this.messageHandlers.size;
    }
    let handler = this.handlersByName.get(name) ?? null;
    if (!handler) {
      handler = this.getHandlerByPattern(name);
      if (handler) this.handlersByName.set(name, handler);
    }
    return handler;
  }

  private async dispatch(message: InboundMessage): Promise<void> {
    const handler = this.handlerFor(message.name);
    try {
      if (!handler) throw new NoHandlerError(message.name, this.queue.name);
      const context = new BusContext(message);
      await new Promise<void>((resolve, reject) => {
        this.onProcessingStartHook(this.transportId!, context, () => {
          const run = this.run(handler, message, context).finally(() => this.onProcessingEndHook?.(this.transportId!, context));
          run.then(resolve, reject);
          return run;
        });
      });
    } catch (err) {
      const error = err instanceof Error ? err : new HandlerFailedError(message.name, err);
      if (this.events.listenerCount('handler-error') > 0) this.events.emit('handler-error', error, message);
      throw error;
    }
  }

  private async run(handler: NestMessageHandler, message: InboundMessage, context: BusContext): Promise<void> {
    // Nest's RPC exception filter turns exceptions into an erroring observable of a plain object;
    // RequeueError survives as itself because it is its own RpcException error object.
    const result = await handler(message.payload, context);
    // Awaited, the result is a value (the handler finished) or an observable (a stream, or the error
    // Nest's exception filter made of a failure): only the observable needs subscribing to.
    if (!isObservable(result)) return;
    try {
      await lastValueFrom(result, { defaultValue: undefined });
    } catch (err) {
      if (err instanceof RequeueError || err instanceof Error) throw err;
      throw new HandlerFailedError(message.name, err);
    }
  }
}
