import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { DATA_SOURCE, METRICS, PlatformMetrics } from '@fl/runtime';
import { TASK_STATUSES } from './task-status';

/** fl_tasks{status}: the task table counted at scrape time. */
@Injectable()
export class TaskMetrics implements OnModuleInit {
  constructor(
    @Inject(METRICS) private readonly metrics: PlatformMetrics,
    @Inject(DATA_SOURCE) private readonly db: DataSource,
  ) {}

  onModuleInit(): void {
    this.metrics.gaugeFrom('fl_tasks', 'Tasks by status', ['status'], async () => {
      const rows: { status: string; n: number }[] = await this.db.query(`SELECT status, count(*)::int AS n FROM gateway.tasks GROUP BY status`);
      const counts = new Map(rows.map((r) => [r.status, r.n]));
      return TASK_STATUSES.map((status) => ({ labels: { status }, value: counts.get(status) ?? 0 }));
    });
  }
}
