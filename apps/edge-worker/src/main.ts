import { Logger } from '@nestjs/common';
import { brokerUser, RabbitMqBus } from '@fl/messaging';
import { brokerOptions, exitAfterGrace, loadConfig, loadDotEnv, requireSetting } from '@fl/runtime';
import { createEdgeWorkerApp } from './bootstrap';
import { EdgeWorkerConfig } from './config';

async function main(): Promise<void> {
  loadDotEnv();
  const config = loadConfig(EdgeWorkerConfig, process.env);
  requireSetting(config.NODE_NAME, 'NODE_NAME', "to name this site (letters, digits, _ or -)");
  requireSetting(config.DATA_PATH, 'DATA_PATH', 'to find the site data (a CSV file or a folder of them)');
  const url = requireSetting(config.AMQP_URL, 'AMQP_URL', 'to run an edge worker as its own process (the embedded bus only works inside `npm run demo`)');
  const siteUser = `${config.NODE_NAME}${config.SITE_USER_SUFFIX}`;
  if (brokerUser(url) !== siteUser) {
    Logger.warn(
      `connecting to RabbitMQ as '${brokerUser(url) ?? 'guest'}', not as this site's own user '${siteUser}': ` +
        'coordinators that check site identity (SITE_AUTH=broker, the default) will refuse its messages; see `npm run cli -- nodes enroll`',
      'EdgeWorker',
    );
  }
  // A site's broker user may configure nothing but its own queue: the exchanges are only checked.
  const bus = await RabbitMqBus.connect(url, brokerOptions(config, `worker-${config.NODE_NAME}`, { topology: 'check' }));
  const app = await createEdgeWorkerApp(config, bus, true);
  app.enableShutdownHooks();
  exitAfterGrace(config.SHUTDOWN_GRACE_S, 'edge-worker');
  Logger.log(`edge worker ${config.NODE_NAME} consuming fl.worker.${config.NODE_NAME}`, 'EdgeWorker');
}

main().catch((err) => {
  Logger.error(err instanceof Error ? err.message : String(err), 'EdgeWorker');
  process.exit(1);
});
