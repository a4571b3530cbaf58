import { RequeueError } from './errors';

export type Settlement = 'ack' | 'requeue' | 'dead-letter';

/** What to do with a delivery whose handler failed with `error`. */
export function settlementForFailure(error: unknown, redelivered: boolean): Exclude<Settlement, 'ack'> {
  return error instanceof RequeueError && !redelivered ? 'requeue' : 'dead-letter';
}

export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  try {
    return JSON.stringify(error);
  } catch {
    return String(error);
  }
}

export interface BusLogger {
  log(message: string): void;
  warn(message: string): void;
  error(message: string, stack?: string): void;
}
