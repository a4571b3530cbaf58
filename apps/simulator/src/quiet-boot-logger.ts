import { LoggerService } from '@nestjs/common';

/** Nest's own start-up lines, which every virtual worker's microservice would repeat. */
const PER_WORKER_BOOT_CONTEXTS = new Set(['NestFactory', 'InstanceLoader', 'NestMicroservice']);

/**
 * The process's logger without Nest's start-up lines ("Starting Nest
 * application...", "... dependencies initialized", "Nest microservice
 * successfully started"): a thousand virtual workers would log each a
 * thousand times. Warnings and errors from those contexts still pass.
 */
export class QuietBootLogger implements LoggerService {
  constructor(private readonly inner: LoggerService) {}

  log(message: unknown, ...rest: unknown[]): void {
    if (PER_WORKER_BOOT_CONTEXTS.has(rest[rest.length - 1] as string)) return;
    this.inner.log(message, ...rest);
  }

  error(message: unknown, ...rest: unknown[]): void {
    this.inner.error(message, ...rest);
  }

  warn(message: unknown, ...rest: unknown[]): void {
    this.inner.warn(message, ...rest);
  }

  debug(message: unknown, ...rest: unknown[]): void {
    this.inner.debug?.(message, ...rest);
  }

  verbose(message: unknown, ...rest: unknown[]): void {
    this.inner.verbose?.(message, ...rest);
  }

  fatal(message: unknown, ...rest: unknown[]): void {
    (this.inner.fatal ?? this.inner.error).call(this.inner, message, ...rest);
  }
}
