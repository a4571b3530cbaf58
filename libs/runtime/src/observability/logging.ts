import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { DynamicModule, INestApplication, LogLevel } from '@nestjs/common';
import { Logger as PinoNestLogger, LoggerModule } from 'nestjs-pino';
import { BaseConfig, logLevelsFrom } from '../config';

export type LogFormat = 'json' | 'pretty';

/** How an app logs: JSON lines through pino (production), or Nest's console format with these levels. */
export interface LogSetup {
  format: LogFormat;
  level: BaseConfig['LOG_LEVEL'];
}

const PINO_LEVEL: Record<BaseConfig['LOG_LEVEL'], string> = { error: 'error', warn: 'warn', log: 'info', debug: 'debug', verbose: 'trace' };
const CORRELATION_HEADER = 'x-correlation-id';
const SAFE_ID = /^[A-Za-z0-9._:-]{1,100}$/;

/** The correlation id of a request: the caller's, if it sent a sane one, else a new one. */
export function correlationIdOf(req: IncomingMessage): string {
  const given = req.headers[CORRELATION_HEADER];
  return typeof given === 'string' && SAFE_ID.test(given) ? given : randomUUID();
}

/**
 * nestjs-pino for JSON logs: one line per event, the request's correlation id
 * on every line logged while serving it (and echoed in x-correlation-id),
 * credentials redacted, health and metrics scrapes not logged.
 */
export function jsonLoggingModule(app: string, level: BaseConfig['LOG_LEVEL']): DynamicModule {
  return LoggerModule.forRoot({
    pinoHttp: {
      name: app,
      level: PINO_LEVEL[level],
      genReqId: (req: IncomingMessage, res: ServerResponse) => {
        const id = correlationIdOf(req);
        res.setHeader(CORRELATION_HEADER, id);
        return id;
      },
      customAttributeKeys: { reqId: 'correlation_id' },
      redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-api-key"]', 'res.headers["set-cookie"]'], censor: '[redacted]' },
      autoLogging: { ignore: (req: IncomingMessage) => (req.url ?? '').startsWith('/health') || req.url === '/metrics' },
    },
  });
}

/** Options for NestFactory.create: JSON setups buffer until the pino logger is in place. */
export function nestLoggerOptions(setup: LogSetup): { logger?: LogLevel[] | false; bufferLogs: boolean } {
  return setup.format === 'json' ? { bufferLogs: true } : { logger: logLevelsFrom(setup.level), bufferLogs: false };
}

export function useJsonLoggerIfSet(app: INestApplication, setup: LogSetup): void {
  if (setup.format === 'json') app.useLogger(app.get(PinoNestLogger));
}

export function loggingImports(app: string, setup: LogSetup): DynamicModule[] {
  return setup.format === 'json' ? [jsonLoggingModule(app, setup.level)] : [];
}
