import { existsSync } from 'node:fs';
import { ClassConstructor, plainToInstance } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, Matches, Max, Min, validateSync } from 'class-validator';

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
  /** PostgreSQL URL. */
  @IsOptional() @Matches(/^postgres(ql)?:\/\/.+/, { message: 'DATABASE_URL must be a postgres:// URL' }) DATABASE_URL?: string;
  @IsInt() @Min(1) @Max(100) DB_POOL_SIZE = 10;
  @IsIn(['local']) REGISTRY_BACKEND: 'local' = 'local';
  @IsString() ARTIFACT_DIR = './.data/artifacts';
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

export const LOG_LEVELS = ['error', 'warn', 'log', 'debug', 'verbose'] as const;
export function logLevelsFrom(level: BaseConfig['LOG_LEVEL']): (typeof LOG_LEVELS)[number][] {
  return LOG_LEVELS.slice(0, LOG_LEVELS.indexOf(level) + 1) as (typeof LOG_LEVELS)[number][];
}
