import { Logger } from '@nestjs/common';

export interface TaskLogFields {
  task_id: number;
  round?: number;
  correlation_id?: string;
}

/**
 * Log lines about one task carry its id and correlation id as fields (JSON
 * logs), so that one search finds the task in the gateway, the coordinator
 * and every worker.
 */
export class TaskLogger {
  constructor(
    private readonly logger: Logger,
    private readonly fields: TaskLogFields,
  ) {}

  log(msg: string, extra: Record<string, unknown> = {}): void {
    this.logger.log({ msg, ...this.fields, ...extra });
  }

  warn(msg: string, extra: Record<string, unknown> = {}): void {
    this.logger.warn({ msg, ...this.fields, ...extra });
  }

  error(msg: string, extra: Record<string, unknown> = {}): void {
    this.logger.error({ msg, ...this.fields, ...extra });
  }
}
