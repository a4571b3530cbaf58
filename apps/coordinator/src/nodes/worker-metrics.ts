import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { DATA_SOURCE, METRICS, PlatformMetrics } from '@fl/runtime';
import { CoordinatorConfig } from '../config';
import { COORDINATOR_CONFIG } from '../tokens';

/** fl_connected_workers{use_case}: edge workers heard from within NODE_ONLINE_WINDOW_S, counted at scrape time. */
@Injectable()
export class WorkerMetrics implements OnModuleInit {
  constructor(
    @Inject(METRICS) private readonly metrics: PlatformMetrics,
    @Inject(DATA_SOURCE) private readonly db: DataSource,
    @Inject(COORDINATOR_CONFIG) private readonly config: CoordinatorConfig,
  ) {}

  onModuleInit(): void {
    this.metrics.gaugeFrom('fl_connected_workers', 'Edge workers online, by use case', ['use_case'], async () => {
      const rows: { use_case: string; n: number }[] = await this.db.query(
        `SELECT u AS use_case, count(*)::int AS n FROM coordinator.nodes, unnest(use_cases) AS u
         WHERE last_seen_at > now() - make_interval(secs => $1) GROUP BY u`,
        [this.config.NODE_ONLINE_WINDOW_S],
      );
      return rows.map((r) => ({ labels: { use_case: r.use_case }, value: r.n }));
    });
  }
}
