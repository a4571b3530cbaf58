import { Controller, INestApplicationContext, Logger, ValidationPipe } from '@nestjs/common';
import { Ctx, EventPattern, Payload, RpcException } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import * as amqplib from 'amqplib';
import { IsInt, IsString, Min } from 'class-validator';
import { randomBytes } from 'node:crypto';
import { firstValueFrom, Observable, throwError } from 'rxjs';
import { RequeueError } from '../errors';
import { InMemoryBus } from '../in-memory-bus';
import { MessageBus } from '../message-bus';
import { RabbitMqBus } from '../rabbitmq-bus';
import { CapturingLogger, eventually } from '../testing/capturing-logger';
import { createTestVhost, TestVhost } from '../testing/rabbitmq-test-vhost';
import { BusContext } from './bus-context';
import { BusTransport } from './bus-transport';
import { createBusValidationPipe } from './bus-validation-pipe';

class FitPayload {
  @IsString()
  task_id: string;

  @IsInt()
  @Min(0)
  round: number;
}

interface Received {
  payload: FitPayload;
  isFitPayload: boolean;
  name: string;
  routingKey: string;
  userId?: string;
  messageId: string;
  redelivered: boolean;
  attachment?: Buffer;
}

@Controller()
class RoundController {
  readonly received: Received[] = [];
  readonly requeueAttempts: boolean[] = [];

  @EventPattern('round.fit')
  async fit(@Payload() payload: FitPayload, @Ctx() ctx: BusContext): Promise<void> {
    this.received.push({
      payload,
      isFitPayload: payload instanceof FitPayload,
      name: ctx.name,
      routingKey: ctx.routingKey,
      userId: ctx.userId,
      messageId: ctx.messageId,
      redelivered: ctx.redelivered,
      attachment: ctx.attachment,
    });
  }

  @EventPattern('round.refused')
  refuse(): void {
    throw new RpcException({ code: 'ROUND_CLOSED', message: 'round 3 is closed' });
  }

  @EventPattern('round.observable-error')
  failLater(): Observable<never> {
    return throwError(() => new Error('stream failed'));
  }

  @EventPattern('round.not-ready')
  notReady(@Ctx() ctx: BusContext): void {
    this.requeueAttempts.push(ctx.redelivered);
    throw new RequeueError('weights not uploaded yet');
  }
}

interface Harness {
  bus: MessageBus;
  busLogger: CapturingLogger;
  /** Names of dead-lettered messages so far. */
  deadLetterNames(): Promise<string[]>;
  teardown(): Promise<void>;
}

/** The same scenarios over both buses: a handler's fate must not depend on the transport. */
function describeTransport(title: string, makeHarness: () => Promise<Harness>, hybrid: boolean) {
  describe(title, () => {
    jest.setTimeout(30_000);
    let h: Harness;
    let app: INestApplicationContext;
    let controller: RoundController;
    let transport: BusTransport;
    const deadLetters: string[] = [];
    const waitForDeadLetter = async (name: string) => {
      await eventually(async () => {
        deadLetters.push(...(await h.deadLetterNames()));
        return deadLetters.includes(name);
      }, `dead letter '${name}'`);
    };

    beforeAll(async () => {
      // Nest's RPC exception filter logs the exceptions these tests provoke on purpose.
      Logger.overrideLogger(false);
      h = await makeHarness();
      const moduleRef = await Test.createTestingModule({ controllers: [RoundController] }).compile();
      transport = new BusTransport(h.bus, { name: 'coordinator', bindings: ['round.#', 'coordinator.#'] });
      const pipe = new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true });
      if (hybrid) {
        // The documented app bootstrap: HTTP app + microservice inheriting its global pipes.
        const http = moduleRef.createNestApplication({ logger: false });
        http.useGlobalPipes(pipe);
        http.connectMicroservice({ strategy: transport }, { inheritAppConfig: true });
        await http.startAllMicroservices();
        await http.init();
        app = http;
      } else {
        const micro = moduleRef.createNestMicroservice({ strategy: transport, logger: false });
        micro.useGlobalPipes(pipe);
        await micro.listen();
        app = micro;
      }
      controller = app.get(RoundController);
    });

    afterAll(async () => {
      await app?.close();
      await h?.teardown();
      Logger.overrideLogger(['log', 'error', 'warn', 'debug', 'verbose', 'fatal']);
    });

    it('dispatches by message name (not routing key) with a validated, transformed payload and the context', async () => {
      const attachment = randomBytes(256 * 1024);
      await h.bus.publish('coordinator.site-a', { name: 'round.fit', payload: { task_id: 't1', round: 3 }, attachment });
      await eventually(() => controller.received.length === 1, 'round.fit handled');
      const [got] = controller.received;
      expect(got).toMatchObject({
        payload: { task_id: 't1', round: 3 },
        isFitPayload: true,
        name: 'round.fit',
        routingKey: 'coordinator.site-a',
        redelivered: false,
        messageId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      });
      expect(got.attachment!.equals(attachment)).toBe(true);
    });

    it('dead-letters a payload the ValidationPipe rejects; the handler never runs', async () => {
      const before = controller.received.length;
      await h.bus.publish('round.fit', { name: 'round.fit', payload: { task_id: 't1', round: -1, extra: true } });
      await waitForDeadLetter('round.fit');
      expect(controller.received.length).toBe(before);
      expect(h.busLogger.errors().join('\n')).toMatch(/'round\.fit'.*dead-lettered/);
    });

    it('with createBusValidationPipe, logs which field failed and why', async () => {
      const strict = createBusValidationPipe();
      const error = await strict
        .transform({ task_id: 7, round: 1 }, { type: 'body', metatype: FitPayload })
        .then(() => undefined, (e: RpcException) => e);
      expect(error).toBeInstanceOf(RpcException);
      expect(error!.getError()).toEqual({
        code: 'INVALID_PAYLOAD',
        message: 'payload failed validation',
        errors: [{ property: 'task_id', reasons: ['task_id must be a string'] }],
      });
    });

    it('dead-letters a message whose handler throws an RpcException', async () => {
      await h.bus.publish('round.refused', { name: 'round.refused', payload: {} });
      await waitForDeadLetter('round.refused');
      expect(h.busLogger.errors().join('\n')).toMatch(/round\.refused.*ROUND_CLOSED.*round 3 is closed/);
    });

    it('dead-letters a message whose handler returns an erroring observable', async () => {
      await h.bus.publish('round.observable-error', { name: 'round.observable-error', payload: {} });
      await waitForDeadLetter('round.observable-error');
    });

    it('requeues once when the handler throws RequeueError, then dead-letters', async () => {
      await h.bus.publish('round.not-ready', { name: 'round.not-ready', payload: {} });
      await waitForDeadLetter('round.not-ready');
      expect(controller.requeueAttempts).toEqual([false, true]);
    });

    it('dead-letters a message no handler matches, saying so', async () => {
      await h.bus.publish('round.unknown', { name: 'round.unknown', payload: {} });
      await waitForDeadLetter('round.unknown');
      expect(h.busLogger.errors().join('\n')).toMatch(/no @EventPattern handler for message 'round\.unknown' on queue 'coordinator'/);
    });

    it('reports its status and unwraps to the bus', async () => {
      expect(await firstValueFrom(transport.status)).toBe('connected');
      expect(transport.unwrap<MessageBus>()).toBe(h.bus);
    });
  });
}

describeTransport(
  'BusTransport over InMemoryBus (createNestMicroservice)',
  async () => {
    const busLogger = new CapturingLogger();
    const bus = new InMemoryBus({ logger: busLogger });
    let seen = 0;
    return {
      bus,
      busLogger,
      deadLetterNames: async () => bus.deadLetters.slice(seen).map((d) => (seen++, d.message.name)),
      teardown: () => bus.close(),
    };
  },
  false,
);

describeTransport(
  'BusTransport over RabbitMqBus (hybrid app, inheritAppConfig)',
  async () => {
    const vhost: TestVhost = await createTestVhost('fl-bus-transport-spec');
    const busLogger = new CapturingLogger();
    const bus = await RabbitMqBus.connect(vhost.url, { logger: busLogger, connectionName: 'bus-transport-spec' });
    const raw = await amqplib.connect(vhost.url);
    const channel = await raw.createChannel();
    return {
      bus,
      busLogger,
      deadLetterNames: async () => {
        const names: string[] = [];
        for (let m = await channel.get('fl.dead-letter', { noAck: true }); m; m = await channel.get('fl.dead-letter', { noAck: true })) {
          names.push(m.properties.type);
        }
        return names;
      },
      teardown: async () => {
        await bus.close();
        await raw.close();
        await vhost.dispose();
      },
    };
  },
  true,
);
