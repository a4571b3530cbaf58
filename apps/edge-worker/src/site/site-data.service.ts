import { Inject, Injectable, Logger } from '@nestjs/common';
import { SiteSplit, SiteSplits } from '@fl/datasets';
import { EdgeWorkerConfig, SITE_SPLITS, WORKER_CONFIG } from '../config';

/** The site's data, loaded and split once at start-up; only counts ever leave the worker. */
@Injectable()
export class SiteData {
  private readonly log = new Logger(SiteData.name);

  constructor(
    @Inject(SITE_SPLITS) readonly splits: Map<string, SiteSplit>,
    @Inject(WORKER_CONFIG) config: EdgeWorkerConfig,
  ) {
    for (const [uc, s] of splits) this.log.log(`${uc}: ${s.train.n} training and ${s.test.n} held-out rows from ${config.DATA_PATH}`);
    for (const [uc, reason] of this.rejected) this.log.error(`refusing use case '${uc}': ${reason}`);
  }

  /** Use cases this site refuses to serve, with the reason (its data does not fit them). */
  get rejected(): Map<string, string> {
    return this.splits instanceof SiteSplits ? this.splits.rejected : new Map();
  }

  get useCases(): string[] {
    return [...this.splits.keys()];
  }

  split(useCase: string): SiteSplit | undefined {
    return this.splits.get(useCase);
  }
}
