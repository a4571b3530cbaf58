import { DynamicModule, Global, Inject, Logger, Module, OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { readFileSync } from 'node:fs';
import { BrokerTls, brokerUser, MessageBus, RabbitMqBus, RabbitMqBusOptions } from '@fl/messaging';
import { createDataSource, ensureDatabase, runMigrations } from '@fl/persistence';
import { LocalModelRegistry, MlflowModelRegistry, ModelRegistry } from '@fl/registry';
import { BaseConfig, ConfigError } from './config';

export const BUS = Symbol('BUS');
export const DATA_SOURCE = Symbol('DATA_SOURCE');
export const MODEL_REGISTRY = Symbol('MODEL_REGISTRY');
const INFRA = Symbol('INFRA');

/** What an app runs on: a message bus, its database and the model registry. */
export interface Infra {
  bus: MessageBus;
  dataSource: DataSource;
  registry: ModelRegistry;
  close(): Promise<void>;
}

/** Which model registry an app talks to. */
export type RegistrySettings =
  | { backend: 'local'; artifactDir: string }
  | { backend: 'mlflow'; trackingUri: string; username?: string; password?: string; token?: string; timeoutMs: number; maxRetries: number };

export function registrySettingsFrom(config: BaseConfig): RegistrySettings {
  if (config.REGISTRY_BACKEND === 'local') return { backend: 'local', artifactDir: config.ARTIFACT_DIR };
  const trackingUri = config.MLFLOW_TRACKING_URI ?? config.MLFLOW_URL;
  if (!trackingUri) throw new ConfigError(['MLFLOW_TRACKING_URI (or MLFLOW_URL) is required with REGISTRY_BACKEND=mlflow']);
  return {
    backend: 'mlflow',
    trackingUri,
    username: config.MLFLOW_TRACKING_USERNAME,
    password: config.MLFLOW_TRACKING_PASSWORD,
    token: config.MLFLOW_TRACKING_TOKEN,
    timeoutMs: config.MLFLOW_HTTP_REQUEST_TIMEOUT * 1000,
    maxRetries: config.MLFLOW_HTTP_REQUEST_MAX_RETRIES,
  };
}

/** The local backend lives in the app's database; MLflow needs none. */
export function createRegistry(settings: RegistrySettings, dataSource?: DataSource): ModelRegistry {
  if (settings.backend === 'local') {
    if (!dataSource) throw new Error('the local model registry needs a database');
    return new LocalModelRegistry(dataSource, settings.artifactDir);
  }
  const { backend: _, ...options } = settings;
  return new MlflowModelRegistry(options);
}

/**
 * How an app connects to RabbitMQ: as the user in the URL, stamping that user as `user_id` on what
 * it publishes (the broker checks it, so receivers know the sender), with TLS material read from
 * the files the configuration names (an unreadable file is a configuration error naming it).
 */
export function brokerOptions(config: BaseConfig, connectionName: string, extra: RabbitMqBusOptions = {}): RabbitMqBusOptions {
  const tls = brokerTlsFrom(config);
  if (tls && config.AMQP_URL && !config.AMQP_URL.startsWith('amqps://')) {
    throw new ConfigError(['AMQP_TLS_* files are set but AMQP_URL is not an amqps:// URL']);
  }
  return {
    connectionName,
    userId: config.AMQP_URL ? brokerUser(config.AMQP_URL) : undefined,
    queueExpiresMs: config.QUEUE_EXPIRES_S * 1000,
    ...(tls ? { tls } : {}),
    ...extra,
  };
}

function brokerTlsFrom(config: BaseConfig): BrokerTls | undefined {
  const read = (name: 'AMQP_TLS_CA_FILE' | 'AMQP_TLS_CERT_FILE' | 'AMQP_TLS_KEY_FILE'): Buffer | undefined => {
    const path = config[name];
    if (!path) return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      throw new ConfigError([`${name}: cannot read '${path}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]);
    }
  };
  const tls: BrokerTls = { ca: read('AMQP_TLS_CA_FILE'), cert: read('AMQP_TLS_CERT_FILE'), key: read('AMQP_TLS_KEY_FILE') };
  if (!!tls.cert !== !!tls.key) throw new ConfigError(['AMQP_TLS_CERT_FILE and AMQP_TLS_KEY_FILE go together: set both or neither']);
  return Object.values(tls).some((v) => v !== undefined) ? tls : undefined;
}

export interface InfraOptions {
  /** RabbitMQ URL; or pass `bus` to share an embedded one (demo, tests). */
  amqpUrl?: string;
  /** Connection options for `amqpUrl` (see `brokerOptions`). */
  brokerOptions?: RabbitMqBusOptions;
  bus?: MessageBus;
  databaseUrl: string;
  poolSize?: number;
  registry: RegistrySettings;
  connectionName: string;
}

/**
 * Connects to the broker and the database and runs pending migrations (under
 * an advisory lock, so apps starting together do not race). Whatever this
 * opened, close() closes; a bus passed in belongs to the caller.
 */
export async function connectInfra(opts: InfraOptions): Promise<Infra> {
  if (!opts.bus && !opts.amqpUrl) throw new Error('connectInfra: either amqpUrl or an embedded bus is needed');
  const ownsBus = !opts.bus;
  await createDatabaseIfMissing(opts.databaseUrl);
  const dataSource = createDataSource({ url: opts.databaseUrl, poolSize: opts.poolSize, applicationName: opts.connectionName });
  await dataSource.initialize();
  let bus: MessageBus | undefined = opts.bus;
  try {
    await runMigrations(dataSource);
    bus ??= await RabbitMqBus.connect(opts.amqpUrl!, { connectionName: opts.connectionName, ...opts.brokerOptions });
  } catch (err) {
    await dataSource.destroy();
    throw err;
  }
  const registry = createRegistry(opts.registry, dataSource);
  let closed = false;
  return {
    bus,
    dataSource,
    registry,
    async close() {
      if (closed) return;
      closed = true;
      if (ownsBus) await bus!.close();
      await dataSource.destroy();
    },
  };
}

/**
 * A first start against a fresh server creates the database named in the URL.
 * Without the right to (or without a server), this does nothing: connecting
 * then fails with the driver's own, clearer, message.
 */
export async function createDatabaseIfMissing(url: string): Promise<void> {
  await ensureDatabase(url).catch(() => false);
}

@Global()
@Module({})
export class InfraModule implements OnApplicationShutdown {
  private readonly log = new Logger('Infra');

  constructor(@Inject(INFRA) private readonly infra: Infra) {}

  static forRoot(infra: Infra): DynamicModule {
    return {
      module: InfraModule,
      providers: [
        { provide: INFRA, useValue: infra },
        { provide: BUS, useValue: infra.bus },
        { provide: DATA_SOURCE, useValue: infra.dataSource },
        { provide: MODEL_REGISTRY, useValue: infra.registry },
      ],
      exports: [BUS, DATA_SOURCE, MODEL_REGISTRY],
    };
  }

  async onApplicationShutdown(): Promise<void> {
    await this.infra.close().catch((err) => this.log.error(`closing infrastructure: ${err}`));
  }
}
