import { Logger } from '@nestjs/common';
import { RabbitMqBus } from '@fl/messaging';
import { exitAfterGrace, loadConfig, loadDotEnv, requireSetting } from '@fl/runtime';
import { createEdgeWorkerApp } from './bootstrap';
import { EdgeWorkerConfig } from './config';

async function main(): Promise<void> {
  loadDotEnv();
  const config = loadConfig(EdgeWorkerConfig, process.env);
  requireSetting(config.NODE_NAME, 'NODE_NAME', "to name this site (letters, digits, _ or -)");
  requireSetting(config.DATA_PATH, 'DATA_PATH', 'to find the site data (a CSV file or a folder of them)');
  const url = requireSetting(config.AMQP_URL, 'AMQP_URL', 'to run an edge worker as its own process (the embedded bus only works inside `npm run demo`)');
  const bus = await RabbitMqBus.connect(url, { connectionName: `worker-${config.NODE_NAME}` });
  const app = await createEdgeWorkerApp(config, bus, true);
  app.enableShutdownHooks();
  exitAfterGrace(config.SHUTDOWN_GRACE_S, 'edge-worker');
  Logger.log(`edge worker ${config.NODE_NAME} consuming fl.worker.${config.NODE_NAME}`, 'EdgeWorker');
}

main().catch((err) => {
  Logger.error(err instanceof Error ? err.message : String(err), 'EdgeWorker');
  process.exit(1);
});
