import { readdirSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { CsvTable, readCsvFile } from './csv';
import { concatLabeled, LabeledData, missingColumns, splitTrainTest, toLabeledData, UseCaseDataError } from './labeled-data';
import { UseCaseDefinition } from './use-case';
import { defaultUseCaseCatalog, UseCaseCatalog } from './use-case-catalog';

export interface SiteSplit {
  train: LabeledData;
  test: LabeledData;
}

export const TEST_FRACTION = 0.2;

/**
 * What a site serves: use case -> its train/test split; and what it refused,
 * use case -> why (its files do not fit the use case's schema). A refused use
 * case is never served: its rows are not used at all.
 */
export class SiteSplits extends Map<string, SiteSplit> {
  readonly rejected = new Map<string, string>();
}

/** One of a site's CSV files, read. */
export interface SiteTable {
  file: string;
  table: CsvTable;
}

/** Reads what a site holds: DATA_PATH is a CSV file or a folder of them (its `.csv` files, in name order). */
export function readSiteTables(dataPath: string, variable = 'DATA_PATH'): SiteTable[] {
  const st = statSync(dataPath, { throwIfNoEntry: false });
  if (!st) throw new Error(`${variable} ${dataPath} does not exist`);
  const files = st.isDirectory()
    ? readdirSync(dataPath)
        .filter((f) => extname(f).toLowerCase() === '.csv')
        .sort()
        .map((f) => join(dataPath, f))
    : [dataPath];
  if (files.length === 0) throw new Error(`${variable} ${dataPath} holds no .csv file`);
  return files.map((file) => ({ file, table: readCsvFile(file) }));
}

/**
 * What a site makes of one use case: the train/test split of the rows of
 * every file that has its columns; or why it refuses it (a bad cell, no row
 * left; no fitting file when the use case was asked for by name); or
 * nothing (no file has its columns and nobody asked for it).
 */
export function splitForUseCase(tables: SiteTable[], uc: UseCaseDefinition, seed: number, requested: boolean): { split: SiteSplit } | { rejected: string } | undefined {
  const fitting = tables.filter((t) => missingColumns(t.table, uc).length === 0);
  if (fitting.length === 0) return requested ? { rejected: noFileReason(tables, uc) } : undefined;
  try {
    const parts = fitting.map((t) => toLabeledData(t.table, uc, t.file)).filter((p) => p.n > 0);
    if (parts.length === 0) throw new UseCaseDataError(`no row left in ${fitting.map((t) => basename(t.file)).join(', ')} after dropping rows with missing values`);
    return { split: splitTrainTest(concatLabeled(parts), TEST_FRACTION, seed) };
  } catch (err) {
    if (!(err instanceof UseCaseDataError)) throw err;
    return { rejected: err.message };
  }
}

/**
 * Loads what a site holds: DATA_PATH is a CSV file or a folder of them. Each
 * file belongs to the use cases whose columns it has. When `useCases` is given
 * only those are served; one without a fitting file, with a bad cell in one of
 * its files, or unknown here is refused with the reason (the site still starts,
 * so that it can say why, and serves it if its definition arrives later from
 * the gateway). Otherwise every use case whose columns a file has is tried, and
 * one whose rows do not fit is refused; a site none of whose files fits a known
 * use case serves none until one that fits is defined at the gateway. The split
 * is deterministic (seeded, stratified) so a restarted worker holds out the
 * same rows.
 */
export function loadSiteData(dataPath: string, useCases: string[] | undefined, seed: number, catalog: UseCaseCatalog = defaultUseCaseCatalog()): SiteSplits {
  const tables = readSiteTables(dataPath);
  const out = new SiteSplits();
  const requested = useCases?.length ? [...new Set(useCases)] : undefined;
  const candidates: UseCaseDefinition[] = [];
  for (const name of requested ?? catalog.list().map((u) => u.name)) {
    const uc = catalog.find(name);
    if (uc) candidates.push(uc);
    else {
      out.rejected.set(
        name,
        `unknown use case at this site (known: ${catalog.list().map((u) => u.name).join(', ')}); ` +
          'one stored at the gateway (POST /use-cases) reaches the site from a coordinator once the site is registered',
      );
    }
  }
  for (const uc of candidates) {
    const outcome = splitForUseCase(tables, uc, seed, requested !== undefined);
    if (!outcome) continue;
    if ('split' in outcome) out.set(uc.name, outcome.split);
    else out.rejected.set(uc.name, outcome.rejected);
  }
  return out;
}

/** Why no file serves the use case: the file closest to it, and the columns it lacks. */
function noFileReason(tables: SiteTable[], uc: UseCaseDefinition): string {
  const closest = tables
    .map((t) => ({ file: t.file, missing: missingColumns(t.table, uc) }))
    .sort((a, b) => a.missing.length - b.missing.length)[0];
  const shown = closest.missing.slice(0, 5).join(', ') + (closest.missing.length > 5 ? `, ... (${closest.missing.length} in all)` : '');
  return `no file has the columns of use case '${uc.name}': ${closest.file} lacks ${shown}`;
}
