import { INestApplication } from '@nestjs/common';
import { NestExpressApplication } from '@nestjs/platform-express';
import helmet from 'helmet';
import { NestFactory } from '@nestjs/core';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { Bindings } from '@fl/contracts';
import { BusTransport } from '@fl/messaging';
import { Infra, nestLoggerOptions, useJsonLoggerIfSet } from '@fl/runtime';
import { checkAuthConfig, GatewayConfig } from './config';
import { GatewayModule } from './gateway.module';

/**
 * Security headers (helmet; Swagger UI keeps working under its default
 * content security policy), no x-powered-by, a bounded JSON body (413 beyond
 * it), and CORS only for the configured origins.
 */
function harden(app: NestExpressApplication, config: GatewayConfig): void {
  // No upgrade-insecure-requests: inside a hospital network the gateway is
  // often reached over plain http, where that directive would break Swagger UI.
  app.use(helmet({ contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } } }));
  app.disable('x-powered-by');
  app.useBodyParser('json', { limit: config.BODY_LIMIT });
  const origins = config.CORS_ORIGINS?.split(',');
  if (origins?.length) app.enableCors({ origin: origins, allowedHeaders: ['authorization', 'content-type', 'x-api-key', 'x-correlation-id'], exposedHeaders: ['x-correlation-id'] });
}

export function buildOpenApi(app: INestApplication) {
  const doc = new DocumentBuilder()
    .setTitle('Federated learning gateway')
    .setDescription('Create, watch and cancel federated training tasks; list models, edge workers and use cases. Compatible with the REST API of the Python predecessor.')
    .setVersion('0.1.0')
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'An access token of the configured OIDC issuer' })
    .addApiKey({ type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'An API key created by an admin (POST /api-keys)' }, 'api-key')
    .build();
  return SwaggerModule.createDocument(app, doc);
}

/**
 * Builds the gateway on the given infrastructure: HTTP API, Swagger UI at
 * /docs (document at /openapi.json), and the consumer of task events.
 * The caller listens and owns signal handling: main.ts enables Nest's
 * shutdown hooks; the demo, which runs several apps, stops them itself.
 */
export async function createGatewayApp(config: GatewayConfig, infra: Infra): Promise<INestApplication> {
  checkAuthConfig(config);
  const log = { format: config.LOG_FORMAT, level: config.LOG_LEVEL };
  const app = await NestFactory.create<NestExpressApplication>(GatewayModule.forRoot(config, infra), { ...nestLoggerOptions(log), bodyParser: false });
  useJsonLoggerIfSet(app, log);
  harden(app, config);
  const document = buildOpenApi(app);
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'openapi.json' });
  app.connectMicroservice(
    { strategy: new BusTransport(infra.bus, { name: `fl.gateway.${config.GATEWAY_ID}`, bindings: Bindings.gateway(), prefetch: 16 }) },
    { inheritAppConfig: true },
  );
  await app.startAllMicroservices();
  return app;
}
