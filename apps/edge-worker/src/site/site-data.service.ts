import { Inject, Injectable, Logger } from '@nestjs/common';
import { SiteSplit, SiteSplits } from '@fl/datasets';
import { EdgeWorkerConfig, SITE_SPLITS, WORKER_CONFIG } from '../config';

/**
 * The site's data, loaded and split at start-up, plus the use cases learned
 * later from the gateway (see UseCaseDefinitions); only counts ever leave the
 * worker.
 */
@Injectable()
export class SiteData {
  private readonly log = new Logger(SiteData.name);
  private readonly refused: Map<string, string>;

  constructor(
    @Inject(SITE_SPLITS) readonly splits: Map<string, SiteSplit>,
    @Inject(WORKER_CONFIG) config: EdgeWorkerConfig,
  ) {
    this.refused = splits instanceof SiteSplits ? splits.rejected : new Map();
    for (const [uc, s] of splits) this.log.log(`${uc}: ${s.train.n} training and ${s.test.n} held-out rows from ${config.DATA_PATH}`);
    for (const [uc, reason] of this.refused) this.log.error(`refusing use case '${uc}': ${reason}`);
    if (splits.size === 0 && this.refused.size === 0) {
      this.log.warn(`no file of ${config.DATA_PATH} has the columns of a known use case: serving none until one that fits is added at the gateway`);
    }
  }

  /** Use cases this site refuses to serve, with the reason (its data does not fit them, or it does not know them). */
  get rejected(): Map<string, string> {
    return this.refused;
  }

  get useCases(): string[] {
    return [...this.splits.keys()];
  }

  split(useCase: string): SiteSplit | undefined {
    return this.splits.get(useCase);
  }

  /** Starts serving a use case learned at run time: its split, no longer refused. */
  serve(useCase: string, split: SiteSplit): void {
    this.splits.set(useCase, split);
    this.refused.delete(useCase);
  }

  /** Refuses a use case learned at run time; one already served stays served. */
  refuse(useCase: string, reason: string): void {
    if (!this.splits.has(useCase)) this.refused.set(useCase, reason);
  }
}
