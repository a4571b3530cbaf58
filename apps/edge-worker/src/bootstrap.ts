import { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Bindings } from '@fl/contracts';
import { loadSiteData } from '@fl/datasets';
import { BusTransport, MessageBus } from '@fl/messaging';
import { nestLoggerOptions, useJsonLoggerIfSet } from '@fl/runtime';
import { EdgeWorkerConfig, workerQueue } from './config';
import { EdgeWorkerModule } from './edge-worker.module';
import { PresenceService } from './site/presence.service';
import { TrainingCancellations } from './training/training-cancellations';

/**
 * An edge worker needs nothing but its broker connection (no database, no
 * registry): it consumes only its own queue, fl.worker.<name>, bound to its
 * name and its use cases (and those it learns later from the gateway).
 * Training is CPU-bound, so it takes one message at a time. Its only
 * listener is the local health and metrics port (HEALTH_PORT; 0: none).
 * `ownsBus`: close the bus on shutdown (not when it is shared).
 */
export async function createEdgeWorkerApp(config: EdgeWorkerConfig, bus: MessageBus, ownsBus: boolean): Promise<INestApplication> {
  const log = { format: config.LOG_FORMAT, level: config.LOG_LEVEL };
  const splits = loadSiteData(config.DATA_PATH, config.USE_CASES?.split(',').filter(Boolean), config.SPLIT_SEED);
  const app = await NestFactory.create(EdgeWorkerModule.forRoot(config, bus, ownsBus, splits), nestLoggerOptions(log));
  useJsonLoggerIfSet(app, log);
  app.connectMicroservice(
    { strategy: new BusTransport(bus, { name: workerQueue(config.NODE_NAME), bindings: Bindings.worker(config.NODE_NAME, [...splits.keys()]), prefetch: 1 }) },
    { inheritAppConfig: true },
  );
  await app.startAllMicroservices();
  await app.get(TrainingCancellations).start();
  if (config.HEALTH_PORT > 0) await app.listen(config.HEALTH_PORT);
  else await app.init();
  await app.get(PresenceService).start();
  return app;
}
