import { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Bindings, Msg, Routes } from '@fl/contracts';
import { BusTransport } from '@fl/messaging';
import { Infra, nestLoggerOptions, useJsonLoggerIfSet } from '@fl/runtime';
import { CoordinatorConfig } from './config';
import { CoordinatorModule } from './coordinator.module';
import { TaskSupervisor } from './tasks/task-supervisor.service';

/**
 * The coordinator consumes its own queue, fl.coordinator.<id>; its only HTTP
 * listener is the health and metrics port (HEALTH_PORT; 0: none).
 */
export async function createCoordinatorApp(config: CoordinatorConfig, infra: Infra): Promise<INestApplication> {
  const log = { format: config.LOG_FORMAT, level: config.LOG_LEVEL };
  const app = await NestFactory.create(CoordinatorModule.forRoot(config, infra), nestLoggerOptions(log));
  useJsonLoggerIfSet(app, log);
  app.connectMicroservice(
    {
      strategy: new BusTransport(infra.bus, {
        name: `fl.coordinator.${config.COORDINATOR_ID}`,
        bindings: Bindings.coordinator(config.COORDINATOR_ID),
        // Results are folded in inside their handlers, which are short; a few
        // in flight keep a round's answers from queueing behind one another.
        prefetch: 8,
      }),
    },
    { inheritAppConfig: true },
  );
  await app.startAllMicroservices();
  if (config.HEALTH_PORT > 0) await app.listen(config.HEALTH_PORT);
  else await app.init();
  // Now that this coordinator's queue exists, ask every worker to announce
  // itself, rather than wait for heartbeats (registrations sent while no
  // coordinator queue existed went nowhere).
  await infra.bus.publish(Routes.allWorkers(Msg.PresenceRequested), {
    name: Msg.PresenceRequested,
    payload: { task_id: 0, round: 0, sender: config.COORDINATOR_ID },
  });
  app.get(TaskSupervisor).start();
  return app;
}
