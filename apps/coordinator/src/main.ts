import { nativeFoldStatus } from '@fl/aggregation';
import { Logger } from '@nestjs/common';
import { brokerOptions, connectInfra, exitAfterGrace, loadConfig, loadDotEnv, registrySettingsFrom, requireSetting } from '@fl/runtime';
import { createCoordinatorApp } from './bootstrap';
import { coordinatorBusOptions, CoordinatorConfig } from './config';

async function main(): Promise<void> {
  loadDotEnv();
  const config = loadConfig(CoordinatorConfig, process.env);
  const infra = await connectInfra({
    amqpUrl: requireSetting(config.AMQP_URL, 'AMQP_URL', 'to run the coordinator as its own process (the embedded bus only works inside `npm run demo`)'),
    databaseUrl: requireSetting(config.DATABASE_URL, 'DATABASE_URL', 'to run the coordinator as its own process'),
    poolSize: config.DB_POOL_SIZE,
    registry: registrySettingsFrom(config),
    connectionName: config.COORDINATOR_ID,
    // Updates of a large model arriving at once are held one at a time (the others wait in files).
    brokerOptions: brokerOptions(config, config.COORDINATOR_ID, coordinatorBusOptions(config)),
  });
  const app = await createCoordinatorApp(config, infra);
  app.enableShutdownHooks();
  exitAfterGrace(config.SHUTDOWN_GRACE_S, 'coordinator');
  Logger.log(`coordinator ${config.COORDINATOR_ID} consuming fl.coordinator.${config.COORDINATOR_ID}`, 'Coordinator');
  const fold = nativeFoldStatus();
  if (fold.available) Logger.log(`aggregation folds natively (${fold.path})`, 'Coordinator');
  else Logger.warn(`aggregation folds with its WebAssembly kernels, slower: ${fold.reason}`, 'Coordinator');
}

main().catch((err) => {
  Logger.error(err instanceof Error ? err.message : String(err), 'Coordinator');
  process.exit(1);
});
