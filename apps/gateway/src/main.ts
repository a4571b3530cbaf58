import { Logger } from '@nestjs/common';
import { brokerOptions, connectInfra, exitAfterGrace, loadConfig, loadDotEnv, registrySettingsFrom, requireSetting } from '@fl/runtime';
import { createGatewayApp } from './bootstrap';
import { checkAuthConfig, GatewayConfig } from './config';

async function main(): Promise<void> {
  loadDotEnv();
  const config = loadConfig(GatewayConfig, process.env);
  checkAuthConfig(config);
  const infra = await connectInfra({
    amqpUrl: requireSetting(config.AMQP_URL, 'AMQP_URL', 'to run the gateway as its own process (the embedded bus only works inside `npm run demo`)'),
    databaseUrl: requireSetting(config.DATABASE_URL, 'DATABASE_URL', 'to run the gateway as its own process'),
    poolSize: config.DB_POOL_SIZE,
    registry: registrySettingsFrom(config),
    connectionName: `gateway-${config.GATEWAY_ID}`,
    brokerOptions: brokerOptions(config, `gateway-${config.GATEWAY_ID}`),
  });
  const app = await createGatewayApp(config, infra);
  app.enableShutdownHooks();
  exitAfterGrace(config.SHUTDOWN_GRACE_S, 'gateway');
  await app.listen(config.PORT, config.HOST);
  Logger.log(`gateway listening on ${await app.getUrl()} (Swagger UI at /docs)`, 'Gateway');
}

main().catch((err) => {
  Logger.error(err instanceof Error ? err.message : String(err), 'Gateway');
  process.exit(1);
});
