import { readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { readCsvFile } from './csv';
import { concatLabeled, LabeledData, splitTrainTest, tableFitsUseCase, toLabeledData } from './labeled-data';
import { getUseCase, listUseCases } from './use-case';

export interface SiteSplit {
  train: LabeledData;
  test: LabeledData;
}

export const TEST_FRACTION = 0.2;

/**
 * Loads what a site holds: DATA_PATH is a CSV file or a folder of them. Each
 * file belongs to the use cases whose columns it has; when `useCases` is given
 * only those are served and each must be found. The split is deterministic
 * (seeded, stratified) so a restarted worker holds out the same rows.
 */
export function loadSiteData(dataPath: string, useCases: string[] | undefined, seed: number): Map<string, SiteSplit> {
  const st = statSync(dataPath, { throwIfNoEntry: false });
  if (!st) throw new Error(`DATA_PATH ${dataPath} does not exist`);
  const files = st.isDirectory()
    ? readdirSync(dataPath)
        .filter((f) => extname(f).toLowerCase() === '.csv')
        .sort()
        .map((f) => join(dataPath, f))
    : [dataPath];
  if (files.length === 0) throw new Error(`DATA_PATH ${dataPath} holds no .csv file`);
  const wanted = useCases?.length ? useCases.map(getUseCase) : listUseCases();
  const parts = new Map<string, LabeledData[]>();
  for (const file of files) {
    const table = readCsvFile(file);
    for (const uc of wanted) {
      if (!tableFitsUseCase(table, uc)) continue;
      const list = parts.get(uc.name) ?? [];
      list.push(toLabeledData(table, uc, file));
      parts.set(uc.name, list);
    }
  }
  const missing = wanted.filter((uc) => useCases?.length && !parts.has(uc.name)).map((uc) => uc.name);
  if (missing.length) throw new Error(`DATA_PATH ${dataPath}: no file with the columns of use case(s) ${missing.join(', ')}`);
  if (parts.size === 0) throw new Error(`DATA_PATH ${dataPath}: no file matches a known use case (${wanted.map((u) => u.name).join(', ')})`);
  const out = new Map<string, SiteSplit>();
  for (const [name, list] of parts) out.set(name, splitTrainTest(concatLabeled(list), TEST_FRACTION, seed));
  return out;
}
