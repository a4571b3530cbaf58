import { readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import {
  bundledDataDir,
  LabeledData,
  missingColumns,
  partitionRows,
  PartitionScheme,
  readCsvFile,
  selectRows,
  SiteSplit,
  SiteSplits,
  splitTrainTest,
  TEST_FRACTION,
  toLabeledData,
  UseCaseCatalog,
  defaultUseCaseCatalog,
} from '@fl/datasets';

export type Dealing = PartitionScheme | { kind: 'copy' };

/** SIM_PARTITION: iid, copy, label:<k>, dirichlet:<alpha>. */
export function parseDealing(text: string): Dealing {
  const [kind, arg] = text.split(':');
  if (kind === 'iid' || kind === 'copy') return { kind };
  if (kind === 'label') return { kind, classes_per_part: Number(arg) };
  if (kind === 'dirichlet') return { kind, alpha: Number(arg) };
  throw new Error(`SIM_PARTITION: unknown dealing '${text}'`);
}

export interface ShardOptions {
  workers: number;
  /** A CSV file or a folder of them; default: the shipped data sets. */
  dataPath?: string;
  /** Use cases to deal; default: every use case one of the files has the columns of. */
  useCases?: string[];
  dealing: Dealing;
  /** Seed of the dealing. */
  seed: number;
  /** Seed of each worker's train/test split, as an edge worker's SPLIT_SEED. */
  splitSeed: number;
  catalog?: UseCaseCatalog;
}

/**
 * What each virtual worker holds: every use case's rows dealt to `workers`
 * shards with the datasets library's partitioners (or, with `copy`, all rows
 * to each), then split into training and held-out rows exactly as an edge
 * worker splits its file. Shards are disjoint except with `copy`.
 */
export function dealShards(opts: ShardOptions): { shards: SiteSplits[]; sources: Map<string, string> } {
  const catalog = opts.catalog ?? defaultUseCaseCatalog();
  const path = opts.dataPath ?? bundledDataDir();
  const files = csvFiles(path);
  const tables = files.map((file) => ({ file, table: readCsvFile(file) }));
  const names = opts.useCases?.length ? [...new Set(opts.useCases)] : catalog.list().map((u) => u.name);
  const shards = Array.from({ length: opts.workers }, () => new SiteSplits());
  const sources = new Map<string, string>();
  for (const name of names) {
    const uc = catalog.get(name);
    const source = tables.find((t) => missingColumns(t.table, uc).length === 0);
    if (!source) {
      if (opts.useCases?.length) throw new Error(`no CSV file in ${path} has the columns of use case '${name}'`);
      continue;
    }
    const data = toLabeledData(source.table, uc, source.file);
    sources.set(name, source.file);
    dealUseCase(data, opts).forEach((split, i) => shards[i].set(name, split));
  }
  if (sources.size === 0) throw new Error(`no CSV file in ${path} has the columns of a known use case (${catalog.list().map((u) => u.name).join(', ')})`);
  return { shards, sources };
}

function dealUseCase(data: LabeledData, opts: ShardOptions): SiteSplit[] {
  if (opts.dealing.kind === 'copy') {
    const split = splitTrainTest(data, TEST_FRACTION, opts.splitSeed);
    return Array.from({ length: opts.workers }, () => split);
  }
  if (opts.workers > data.n) {
    throw new Error(`cannot deal ${data.n} rows to ${opts.workers} workers (${opts.dealing.kind}); use fewer workers or SIM_PARTITION=copy`);
  }
  return partitionRows(data.labels, opts.workers, opts.dealing, opts.seed).map((rows) => splitTrainTest(selectRows(data, rows), TEST_FRACTION, opts.splitSeed));
}

function csvFiles(path: string): string[] {
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) throw new Error(`DATA_PATH ${path} does not exist`);
  if (!st.isDirectory()) return [path];
  const files = readdirSync(path)
    .filter((f) => extname(f).toLowerCase() === '.csv')
    .sort()
    .map((f) => join(path, f));
  if (files.length === 0) throw new Error(`DATA_PATH ${path} holds no .csv file`);
  return files;
}
