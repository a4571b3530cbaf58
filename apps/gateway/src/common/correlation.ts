import type { Request } from 'express';
import { correlationIdOf } from '@fl/runtime';

/**
 * The request's correlation id: the one pino-http gave it (JSON logging), or
 * the caller's x-correlation-id / a new one, kept on the request so that the
 * error body, the task and the logs all carry the same.
 */
export function requestCorrelationId(req: Request): string {
  const r = req as Request & { id?: unknown };
  if (typeof r.id !== 'string') r.id = correlationIdOf(req);
  return r.id as string;
}
