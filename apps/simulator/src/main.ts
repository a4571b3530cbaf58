import { ConsoleLogger, Logger, LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Logger as PinoNestLogger } from 'nestjs-pino';
import { bundledDataDir } from '@fl/datasets';
import { brokerUser, RabbitMqBus } from '@fl/messaging';
import { brokerOptions, exitAfterGrace, loadConfig, loadDotEnv, logLevelsFrom, nestLoggerOptions, requireSetting } from '@fl/runtime';
import { EdgeWorkerConfig } from '../../edge-worker/src/config';
import { SimulatorConfig } from './config';
import { QuietBootLogger } from './quiet-boot-logger';
import { Simulation } from './simulation';
import { SimulationHost, SimulatorModule } from './simulator.module';

/**
 * `SIMULATED_WORKERS=K npm run start:simulator`: K virtual edge workers in
 * this process against the real coordinators over the real broker. They
 * share this process's broker user, so the coordinators must trust the
 * site names in payloads (SITE_AUTH=none).
 */
async function main(): Promise<void> {
  loadDotEnv();
  const config = loadConfig(SimulatorConfig, process.env);
  const url = requireSetting(config.AMQP_URL, 'AMQP_URL', 'to reach the coordinators: the simulator runs against a real RabbitMQ');
  // The edge worker's own settings, read as an edge worker reads them; each virtual worker gets its own NODE_NAME.
  const worker = loadConfig(EdgeWorkerConfig, { ...process.env, NODE_NAME: config.SIM_NODE_PREFIX, DATA_PATH: config.DATA_PATH ?? bundledDataDir() });
  const log = { format: config.LOG_FORMAT, level: config.LOG_LEVEL };
  const app = await NestFactory.createApplicationContext(SimulatorModule.forRoot(log), nestLoggerOptions(log));
  const base: LoggerService = log.format === 'json' ? app.get(PinoNestLogger) : new ConsoleLogger({ logLevels: logLevelsFrom(log.level) });
  app.useLogger(new QuietBootLogger(base));
  app.enableShutdownHooks();
  exitAfterGrace(config.SHUTDOWN_GRACE_S, 'simulator');
  Logger.warn(
    `every virtual worker publishes as broker user '${brokerUser(url) ?? 'guest'}', not as a site's own user: ` +
      'run the coordinators with SITE_AUTH=none, or they will refuse the virtual workers\' messages',
    'Simulator',
  );
  app.get(SimulationHost).simulation = await Simulation.start({
    config,
    worker,
    connect: (c) => RabbitMqBus.connect(url, brokerOptions(config, `simulator-${config.SIM_NODE_PREFIX}-${c + 1}`)),
  });
}

main().catch((err) => {
  Logger.error(err instanceof Error ? err.message : String(err), 'Simulator');
  process.exit(1);
});
