import { CsvTable, readCsvFile } from './csv';
import { seededPermutation } from './prng';
import { hasFederatedStatistics, UseCaseDefinition } from './use-case';

/** Rows of one use case as the trainer needs them: row-major features and class indices. */
export interface LabeledData {
  x: Float32Array;
  labels: Int32Array;
  n: number;
  features: number;
}

/** A site's rows do not fit a use case (missing column, wrong type, unknown label): the message says where. */
export class UseCaseDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UseCaseDataError';
  }
}

/**
 * The model's inputs for a use case, in order: each number feature as it is,
 * each categorical feature one-hot (`column=value`, unscaled), with the
 * standardisation of every input ('none': mean 0, std 1). With federated
 * statistics, `federated` marks the inputs they standardise (the number
 * features) and mean/std are placeholders (0 and 1) until a task computes them.
 */
export function modelInputs(uc: UseCaseDefinition): { names: string[]; mean: number[]; std: number[]; federated?: boolean[] } {
  const names: string[] = [];
  const mean: number[] = [];
  const std: number[] = [];
  const standardized: boolean[] = [];
  const n = uc.normalization;
  const fixed = n.method === 'standardize' && 'mean' in n ? n : undefined;
  let k = 0;
  for (const f of uc.features) {
    if (f.type === 'number') {
      names.push(f.name);
      mean.push(fixed ? fixed.mean[k] : 0);
      std.push(fixed ? fixed.std[k] : 1);
      standardized.push(true);
      k++;
    } else {
      for (const v of f.values) {
        names.push(`${f.name}=${v}`);
        mean.push(0);
        std.push(1);
        standardized.push(false);
      }
    }
  }
  return hasFederatedStatistics(n) ? { names, mean, std, federated: standardized } : { names, mean, std };
}

/** The columns of the use case (features, then the label) that the table lacks. */
export function missingColumns(table: CsvTable, uc: UseCaseDefinition): string[] {
  const cols = new Set(table.header);
  return [...uc.features.map((f) => f.name), uc.label.column].filter((c) => !cols.has(c));
}

/** True when the table has every feature and the label column of the use case. */
export function tableFitsUseCase(table: CsvTable, uc: UseCaseDefinition): boolean {
  return missingColumns(table, uc).length === 0;
}

/**
 * Reads a table as a use case's rows, applying its missing-value policy and
 * one-hot encoding. Throws UseCaseDataError naming the file, line and column
 * of the first cell that does not fit: the data is refused as a whole, never
 * partly used.
 */
export function toLabeledData(table: CsvTable, uc: UseCaseDefinition, source = 'csv'): LabeledData {
  const missing = missingColumns(table, uc);
  if (missing.length) throw new UseCaseDataError(`${source}: missing column(s) ${missing.join(', ')} for use case '${uc.name}'`);
  const featureIdx = uc.features.map((f) => table.header.indexOf(f.name));
  const labelIdx = table.header.indexOf(uc.label.column);
  const classIndex = new Map(uc.label.classes.map((c, i) => [c, i]));
  const categoryIndex = uc.features.map((f) => (f.type === 'categorical' ? new Map(f.values.map((v, i) => [v, i])) : undefined));
  const offsets: number[] = [];
  let width = 0;
  for (const f of uc.features) {
    offsets.push(width);
    width += f.type === 'categorical' ? f.values.length : 1;
  }
  const policy = uc.missing_values;
  const markers = new Set(policy.markers);
  const x = new Float32Array(table.rows.length * width);
  const labels = new Int32Array(table.rows.length);
  let imputeMeans = false;
  let n = 0;
  rows: for (let r = 0; r < table.rows.length; r++) {
    const row = table.rows[r];
    const at = `${source}:${table.lines[r]}`;
    const label = row[labelIdx];
    if (markers.has(label)) {
      if (policy.strategy === 'drop_row') continue;
      throw new UseCaseDataError(`${at}: label column '${uc.label.column}' has a missing value ('${label}')`);
    }
    const cls = classIndex.get(label);
    if (cls === undefined) {
      throw new UseCaseDataError(`${at}: unknown class '${label}' (expected one of ${uc.label.classes.join(', ')})`);
    }
    const out = x.subarray(n * width, (n + 1) * width);
    out.fill(0);
    for (let f = 0; f < featureIdx.length; f++) {
      const def = uc.features[f];
      const cell = row[featureIdx[f]];
      if (markers.has(cell)) {
        if (policy.strategy === 'drop_row') continue rows;
        if (policy.strategy === 'reject' || def.type === 'categorical') {
          throw new UseCaseDataError(`${at}: column '${def.name}' has a missing value ('${cell}')` + (policy.strategy === 'reject' ? '' : ' that cannot be imputed'));
        }
        out[offsets[f]] = policy.strategy === 'constant' ? policy.value! : NaN;
        imputeMeans ||= policy.strategy === 'mean';
        continue;
      }
      if (def.type === 'categorical') {
        const v = categoryIndex[f]!.get(cell);
        if (v === undefined) throw new UseCaseDataError(`${at}: column '${def.name}' has an unknown value '${cell}' (expected one of ${def.values.join(', ')})`);
        out[offsets[f] + v] = 1;
        continue;
      }
      const v = Number(cell);
      if (cell === '' || !Number.isFinite(v)) throw new UseCaseDataError(`${at}: column '${def.name}' is not a number: '${cell}'`);
      out[offsets[f]] = v;
    }
    labels[n++] = cls;
  }
  const data: LabeledData = { x: x.slice(0, n * width), labels: labels.slice(0, n), n, features: width };
  if (imputeMeans) fillColumnMeans(data, uc, offsets, source);
  return data;
}

/** Replaces the NaNs left for missing number cells by the mean of the column's other values. */
function fillColumnMeans(data: LabeledData, uc: UseCaseDefinition, offsets: number[], source: string): void {
  const W = data.features;
  uc.features.forEach((f, i) => {
    if (f.type !== 'number') return;
    const c = offsets[i];
    let sum = 0;
    let count = 0;
    for (let r = 0; r < data.n; r++) {
      const v = data.x[r * W + c];
      if (!Number.isNaN(v)) {
        sum += v;
        count++;
      }
    }
    if (count === data.n) return;
    if (count === 0) throw new UseCaseDataError(`${source}: column '${f.name}' has no value to take a mean of`);
    const mean = sum / count;
    for (let r = 0; r < data.n; r++) if (Number.isNaN(data.x[r * W + c])) data.x[r * W + c] = mean;
  });
}

export function loadLabeledCsv(path: string, uc: UseCaseDefinition): LabeledData {
  return toLabeledData(readCsvFile(path), uc, path);
}

export function concatLabeled(parts: LabeledData[]): LabeledData {
  const F = parts[0].features;
  const n = parts.reduce((s, p) => s + p.n, 0);
  const x = new Float32Array(n * F);
  const labels = new Int32Array(n);
  let off = 0;
  for (const p of parts) {
    x.set(p.x, off * F);
    labels.set(p.labels, off);
    off += p.n;
  }
  return { x, labels, n, features: F };
}

export function selectRows(data: LabeledData, rows: ArrayLike<number>): LabeledData {
  const F = data.features;
  const x = new Float32Array(rows.length * F);
  const labels = new Int32Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    x.set(data.x.subarray(r * F, r * F + F), i * F);
    labels[i] = data.labels[r];
  }
  return { x, labels, n: rows.length, features: F };
}

/**
 * Deterministic stratified split: within each class a seeded permutation puts
 * round(testFraction * count) rows (at least one when the class has two or
 * more) in the test split, so every class a site holds is also evaluated.
 */
export function splitTrainTest(data: LabeledData, testFraction: number, seed: number): { train: LabeledData; test: LabeledData } {
  if (!(testFraction > 0 && testFraction < 1)) throw new Error(`testFraction must be in (0, 1), got ${testFraction}`);
  const byClass = new Map<number, number[]>();
  for (let r = 0; r < data.n; r++) {
    const list = byClass.get(data.labels[r]) ?? [];
    list.push(r);
    byClass.set(data.labels[r], list);
  }
  const train: number[] = [];
  const test: number[] = [];
  for (const [cls, rows] of [...byClass.entries()].sort((a, b) => a[0] - b[0])) {
    const perm = seededPermutation(rows.length, seed + cls);
    const nTest = rows.length < 2 ? 0 : Math.max(1, Math.round(testFraction * rows.length));
    perm.forEach((p, i) => (i < nTest ? test : train).push(rows[p]));
  }
  train.sort((a, b) => a - b);
  test.sort((a, b) => a - b);
  return { train: selectRows(data, train), test: selectRows(data, test) };
}
