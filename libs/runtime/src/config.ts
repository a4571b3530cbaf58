import { existsSync } from 'node:fs';
import { ClassConstructor, plainToInstance } from 'class-transformer';
import { IsIn, IsInt, IsNumber, IsOptional, IsString, Matches, Max, Min, validateSync } from 'class-validator';

export class ConfigError extends Error {
  constructor(problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** Settings every app reads. Defaults are the documented ones in .env.example. */
export class BaseConfig {
  /** RabbitMQ URL; unset means the embedded in-memory bus (demo only). */
  @IsOptional() @Matches(/^amqps?:\/\/.+/, { message: 'AMQP_URL must be an amqp:// or amqps:// URL' }) AMQP_URL?: string;
  /** For amqps:// URLs: PEM files of the CA that signed the broker's certificate, and of this app's client certificate and (unencrypted) key, when the broker asks for one. */
  @IsOptional() @IsString() AMQP_TLS_CA_FILE?: string;
  @IsOptional() @IsString() AMQP_TLS_CERT_FILE?: string;
  @IsOptional() @IsString() AMQP_TLS_KEY_FILE?: string;
  /**
   * A site's broker user is its node name followed by this suffix (default none). One broker serving
   * several platforms (vhosts) keeps their site users apart with it, e.g. `.hospital-net`.
   */
  @IsOptional() @Matches(/^[A-Za-z0-9_.@-]{0,64}$/, { message: 'SITE_USER_SUFFIX may hold only letters, digits, _ . @ or - (at most 64)' }) SITE_USER_SUFFIX = '';
  /**
   * RabbitMQ deletes this app's own queue (fl.worker.<name> and its .control queue, fl.coordinator.<id>,
   * fl.gateway.<id>) once it has had no consumer this long: the queue of an instance that never comes
   * back stops collecting messages. 0: never. Keep it longer than any outage an instance should survive
   * with its messages (a site down over a long weekend, a gateway whose queue holds task events).
   */
  @IsInt() @Min(0) @Max(30 * 86_400) QUEUE_EXPIRES_S = 7 * 86_400;
  /** PostgreSQL URL (TLS: add sslmode=verify-full&sslrootcert=<CA file>, and sslcert/sslkey for a client certificate). */
  @IsOptional() @Matches(/^postgres(ql)?:\/\/.+/, { message: 'DATABASE_URL must be a postgres:// URL' }) DATABASE_URL?: string;
  @IsInt() @Min(1) @Max(100) DB_POOL_SIZE = 10;
  /** local: PostgreSQL tables + ARTIFACT_DIR; mlflow: an MLflow 2.x tracking server. */
  @IsIn(['local', 'mlflow']) REGISTRY_BACKEND: 'local' | 'mlflow' = 'local';
  @IsString() ARTIFACT_DIR = './.data/artifacts';
  /** MLflow tracking server, e.g. http://mlflow:5000 (MLFLOW_URL, the predecessor's name, is read too). */
  @IsOptional() @Matches(/^https?:\/\/.+/, { message: 'MLFLOW_TRACKING_URI must be an http:// or https:// URL' }) MLFLOW_TRACKING_URI?: string;
  @IsOptional() @Matches(/^https?:\/\/.+/, { message: 'MLFLOW_URL must be an http:// or https:// URL' }) MLFLOW_URL?: string;
  /** Basic auth for MLflow, or a bearer token (which wins when both are set). */
  @IsOptional() @IsString() MLFLOW_TRACKING_USERNAME?: string;
  @IsOptional() @IsString() MLFLOW_TRACKING_PASSWORD?: string;
  @IsOptional() @IsString() MLFLOW_TRACKING_TOKEN?: string;
  /** Per request, each retry included. */
  @IsNumber() @Min(0.1) @Max(3600) MLFLOW_HTTP_REQUEST_TIMEOUT = 30;
  /** Retries of a request on 5xx, 429, timeouts and connection errors (exponential backoff). */
  @IsInt() @Min(0) @Max(20) MLFLOW_HTTP_REQUEST_MAX_RETRIES = 4;
  /** After SIGTERM or SIGINT an app finishes what it holds; past this many seconds it exits anyway. */
  @IsNumber() @Min(0) @Max(3600) SHUTDOWN_GRACE_S = 10;
  /**
   * A folder of use case files (`<name>.json`) beside the shipped ones (iris, breast_cancer, digits).
   * An edge worker can serve only use cases it has a file for.
   */
  @IsOptional() @IsString() USE_CASES_DIR?: string;
  /** json: one JSON object per line (pino), for log collectors; pretty: Nest's console format, for development. */
  @IsIn(['json', 'pretty']) LOG_FORMAT: 'json' | 'pretty' = 'json';
  @IsIn(['error', 'warn', 'log', 'debug', 'verbose']) LOG_LEVEL: 'error' | 'warn' | 'log' | 'debug' | 'verbose' = 'log';
}

/**
 * Loads `.env` from the working directory when there is one; variables
 * already set in the environment win over the file.
 */
export function loadDotEnv(path = '.env'): void {
  if (existsSync(path)) process.loadEnvFile(path);
}

/**
 * Reads a config class from the environment: unknown variables are ignored,
 * every bad one is named, and nothing starts with a half-valid configuration.
 */
export function loadConfig<T extends object>(cls: ClassConstructor<T>, env: Record<string, string | undefined>): T {
  // A variable whose default is a number is read as one ('' and 'abc' become NaN and fail validation).
  const defaults = new cls() as Record<string, unknown>;
  const defined = Object.fromEntries(
    Object.entries(env)
      .filter(([, v]) => v !== undefined && v !== '')
      .map(([k, v]) => [k, typeof defaults[k] === 'number' ? Number(v) : v]),
  );
  const instance = plainToInstance(cls, defined, { exposeDefaultValues: true });
  const errors = validateSync(instance, { whitelist: true });
  if (errors.length) {
    throw new ConfigError(errors.flatMap((e) => Object.values(e.constraints ?? {}).map((m) => `${e.property}: ${m} (got '${env[e.property]}')`)));
  }
  return instance;
}

export function requireSetting<T>(value: T | undefined, name: string, why: string): T {
  if (value === undefined || value === null || value === '') throw new ConfigError([`${name} is required ${why}`]);
  return value;
}

/**
 * Nest's shutdown hooks stop the app on SIGTERM/SIGINT; this bounds how long
 * that may take, so an orchestrator's stop never waits on a stuck handler.
 */
export function exitAfterGrace(seconds: number, app: string): void {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      setTimeout(() => {
        process.stderr.write(`${app}: still stopping ${seconds} s after ${signal}; exiting now\n`);
        process.exit(1);
      }, seconds * 1000).unref();
    });
  }
}

export const LOG_LEVELS = ['error', 'warn', 'log', 'debug', 'verbose'] as const;
export function logLevelsFrom(level: BaseConfig['LOG_LEVEL']): (typeof LOG_LEVELS)[number][] {
  return LOG_LEVELS.slice(0, LOG_LEVELS.indexOf(level) + 1) as (typeof LOG_LEVELS)[number][];
}
