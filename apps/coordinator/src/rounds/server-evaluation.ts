import { Inject, Injectable, Logger } from '@nestjs/common';
import { basename } from 'node:path';
import { DataSource } from 'typeorm';
import { concatLabeled, findUseCase, LabeledData, missingColumns, readSiteTables, SiteTable, toLabeledData, UseCaseDefinition } from '@fl/datasets';
import { DATA_SOURCE, readStoredUseCase } from '@fl/runtime';
import { CoordinatorConfig } from '../config';
import { COORDINATOR_CONFIG } from '../tokens';

/** The operator's held-out data cannot be used for a use case (a file that does not fit it). */
export class ServerEvaluationDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ServerEvaluationDataError';
  }
}

/**
 * Server-side evaluation: where the coordinator's operator has a held-out set
 * (SERVER_EVAL_DATA, a CSV file or a folder of them, read like a site's
 * DATA_PATH), every round's new global weights are also evaluated on all of
 * its rows of the task's use case, beside the sites' own evaluations. The
 * rows are read once per use case; files without the use case's columns are
 * skipped; a file with them whose rows do not fit fails the task naming it.
 */
@Injectable()
export class ServerEvaluation {
  private readonly log = new Logger(ServerEvaluation.name);
  private readonly cache = new Map<string, Promise<LabeledData | null>>();

  constructor(
    @Inject(COORDINATOR_CONFIG) private readonly config: CoordinatorConfig,
    @Inject(DATA_SOURCE) private readonly db: DataSource,
  ) {}

  get configured(): boolean {
    return Boolean(this.config.SERVER_EVAL_DATA);
  }

  /** All held-out rows of the use case, or null when the operator has none. */
  dataFor(useCase: string): Promise<LabeledData | null> {
    if (!this.config.SERVER_EVAL_DATA) return Promise.resolve(null);
    let hit = this.cache.get(useCase);
    if (!hit) {
      hit = this.load(this.config.SERVER_EVAL_DATA, useCase);
      this.cache.set(useCase, hit);
      // A failure is not remembered: the operator may fix the file.
      hit.catch(() => this.cache.delete(useCase));
    }
    return hit;
  }

  private async load(path: string, useCase: string): Promise<LabeledData | null> {
    const uc: UseCaseDefinition | undefined = findUseCase(useCase) ?? (await readStoredUseCase(this.db, useCase));
    if (!uc) return null;
    let tables: SiteTable[];
    try {
      tables = readSiteTables(path, 'SERVER_EVAL_DATA');
    } catch (err) {
      throw new ServerEvaluationDataError((err as Error).message);
    }
    const parts: LabeledData[] = [];
    for (const { file, table } of tables) {
      if (missingColumns(table, uc).length) continue;
      try {
        parts.push(toLabeledData(table, uc, file));
      } catch (err) {
        throw new ServerEvaluationDataError(`server-side evaluation data for '${useCase}': ${(err as Error).message}`);
      }
    }
    const rows = parts.filter((p) => p.n > 0);
    if (rows.length === 0) return null;
    const data = concatLabeled(rows);
    this.log.log(`server-side evaluation of '${useCase}' on ${data.n} rows from ${rows.length} file(s) (${tables.map((t) => basename(t.file)).join(', ')})`);
    return data;
  }
}
