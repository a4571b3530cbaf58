import { CsvTable, readCsvFile } from './csv';
import { seededPermutation } from './prng';
import { UseCaseDefinition } from './use-case';

/** Rows of one use case as the trainer needs them: row-major features and class indices. */
export interface LabeledData {
  x: Float32Array;
  labels: Int32Array;
  n: number;
  features: number;
}

/** True when the table has every feature and the label column of the use case. */
export function tableFitsUseCase(table: CsvTable, uc: UseCaseDefinition): boolean {
  const cols = new Set(table.header);
  return cols.has(uc.label.column) && uc.features.every((f) => cols.has(f.name));
}

export function toLabeledData(table: CsvTable, uc: UseCaseDefinition, source = 'csv'): LabeledData {
  const missing = [...uc.features.map((f) => f.name), uc.label.column].filter((c) => !table.header.includes(c));
  if (missing.length) throw new Error(`${source}: missing column(s) ${missing.join(', ')} for use case '${uc.name}'`);
  const featureIdx = uc.features.map((f) => table.header.indexOf(f.name));
  const labelIdx = table.header.indexOf(uc.label.column);
  const classIndex = new Map(uc.label.classes.map((c, i) => [c, i]));
  const n = table.rows.length;
  const F = featureIdx.length;
  const x = new Float32Array(n * F);
  const labels = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    const row = table.rows[r];
    for (let f = 0; f < F; f++) {
      const v = Number(row[featureIdx[f]]);
      if (row[featureIdx[f]] === '' || !Number.isFinite(v)) {
        throw new Error(`${source}:${table.lines[r]}: column '${uc.features[f].name}' is not a number: '${row[featureIdx[f]]}'`);
      }
      x[r * F + f] = v;
    }
    const cls = classIndex.get(row[labelIdx]);
    if (cls === undefined) {
      throw new Error(`${source}:${table.lines[r]}: unknown class '${row[labelIdx]}' (expected one of ${uc.label.classes.join(', ')})`);
    }
    labels[r] = cls;
  }
  return { x, labels, n, features: F };
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
