import { CsvTable } from './csv';
import { seededPermutation, seededRandom } from './prng';
import { UseCaseDefinition } from './use-case';

/**
 * Splits a table's rows into `parts` disjoint shards of near-equal size, for
 * simulating sites. 'iid' shuffles first (seeded); 'ordered' keeps file order,
 * which on a class-sorted file gives each site mostly one class.
 */
export function partitionTable(table: CsvTable, parts: number, seed: number, mode: 'iid' | 'ordered' = 'iid'): CsvTable[] {
  checkParts(table.rows.length, parts);
  const order = mode === 'iid' ? Array.from(seededPermutation(table.rows.length, seed)) : table.rows.map((_, i) => i);
  const shards: number[][] = [];
  for (let p = 0; p < parts; p++) {
    shards.push(order.slice(Math.floor((p * order.length) / parts), Math.floor(((p + 1) * order.length) / parts)));
  }
  return shards.map((idx) => selectTableRows(table, idx));
}

/**
 * How rows are dealt to simulated sites:
 * - `iid`: shuffled, near-equal shards;
 * - `label`: each shard holds `classes_per_part` classes (consecutive in a
 *   seeded order of the classes, so together the shards cover every class),
 *   and the rows of a class are shared evenly by the shards holding it;
 * - `dirichlet`: each class's rows are dealt in proportions drawn from
 *   Dirichlet(alpha) over the shards (small alpha: strong label skew), drawn
 *   again until every shard holds at least `min_rows` rows (default 1).
 */
export type PartitionScheme =
  | { kind: 'iid' }
  | { kind: 'label'; classes_per_part: number }
  | { kind: 'dirichlet'; alpha: number; min_rows?: number };

/**
 * Row indices of each shard (ascending), deterministic in `seed`; the shards
 * are disjoint and cover every row. `labels` are class indices.
 */
export function partitionRows(labels: ArrayLike<number>, parts: number, scheme: PartitionScheme, seed: number): Int32Array[] {
  const n = labels.length;
  checkParts(n, parts);
  const shards: number[][] = Array.from({ length: parts }, () => []);
  if (scheme.kind === 'iid') {
    const order = seededPermutation(n, seed);
    for (let p = 0; p < parts; p++) shards[p].push(...order.subarray(Math.floor((p * n) / parts), Math.floor(((p + 1) * n) / parts)));
  } else {
    const byClass = rowsByClass(labels, seed);
    if (scheme.kind === 'label') dealByLabel(byClass, shards, scheme.classes_per_part, seed);
    else dealDirichlet(byClass, shards, scheme.alpha, scheme.min_rows ?? 1, n, seed);
  }
  return shards.map((s) => Int32Array.from(s).sort());
}

/** The same for a CSV table whose label column holds the use case's classes (for writing site files). */
export function partitionTableBy(table: CsvTable, uc: UseCaseDefinition, parts: number, scheme: PartitionScheme, seed: number): CsvTable[] {
  const col = table.header.indexOf(uc.label.column);
  if (col < 0) throw new Error(`the table has no label column '${uc.label.column}' of use case '${uc.name}'`);
  const classIndex = new Map(uc.label.classes.map((c, i) => [c, i]));
  const labels = table.rows.map((row, r) => {
    const cls = classIndex.get(row[col]);
    if (cls === undefined) throw new Error(`line ${table.lines[r]}: unknown class '${row[col]}' for use case '${uc.name}'`);
    return cls;
  });
  return partitionRows(labels, parts, scheme, seed).map((idx) => selectTableRows(table, Array.from(idx)));
}

function checkParts(rows: number, parts: number): void {
  if (!Number.isInteger(parts) || parts < 1 || parts > rows) throw new Error(`cannot split ${rows} rows into ${parts} parts`);
}

function selectTableRows(table: CsvTable, idx: number[]): CsvTable {
  const sorted = [...idx].sort((a, b) => a - b);
  return { header: table.header, rows: sorted.map((i) => table.rows[i]), lines: sorted.map((i) => table.lines[i]) };
}

/** The rows of each class present, each list in a seeded order, classes in ascending order. */
function rowsByClass(labels: ArrayLike<number>, seed: number): Int32Array[] {
  const lists = new Map<number, number[]>();
  for (let r = 0; r < labels.length; r++) {
    const list = lists.get(labels[r]) ?? [];
    list.push(r);
    lists.set(labels[r], list);
  }
  return [...lists.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([cls, rows]) => {
      const perm = seededPermutation(rows.length, seed + 7919 * (cls + 1));
      return Int32Array.from(perm, (i) => rows[i]);
    });
}

function dealByLabel(byClass: Int32Array[], shards: number[][], perPart: number, seed: number): void {
  const C = byClass.length;
  const parts = shards.length;
  if (!Number.isInteger(perPart) || perPart < 1 || perPart > C) throw new Error(`classes_per_part must be an integer in 1..${C}, got ${perPart}`);
  if (parts * perPart < C) throw new Error(`${parts} parts with ${perPart} class(es) each cannot cover ${C} classes`);
  const classOrder = seededPermutation(C, seed);
  const holders: number[][] = Array.from({ length: C }, () => []);
  for (let p = 0; p < parts; p++) for (let j = 0; j < perPart; j++) holders[classOrder[(p * perPart + j) % C]].push(p);
  byClass.forEach((rows, c) => {
    const h = holders[c];
    for (let k = 0; k < h.length; k++) {
      const part = rows.subarray(Math.floor((k * rows.length) / h.length), Math.floor(((k + 1) * rows.length) / h.length));
      shards[h[k]].push(...part);
    }
  });
  const empty = shards.findIndex((s) => s.length === 0);
  if (empty >= 0) throw new Error(`part ${empty} got no rows: too few rows per class for ${parts} parts with ${perPart} class(es) each`);
}

function dealDirichlet(byClass: Int32Array[], shards: number[][], alpha: number, minRows: number, n: number, seed: number): void {
  const parts = shards.length;
  if (!(Number.isFinite(alpha) && alpha > 0)) throw new Error(`alpha must be a positive number, got ${alpha}`);
  if (!Number.isInteger(minRows) || minRows < 0 || minRows * parts > n) throw new Error(`cannot give each of ${parts} parts at least ${minRows} of ${n} rows`);
  const rand = seededRandom(seed);
  for (let attempt = 0; attempt < 1000; attempt++) {
    const draft: number[][] = Array.from({ length: parts }, () => []);
    for (const rows of byClass) {
      const share = dirichlet(parts, alpha, rand);
      let from = 0;
      let cumulative = 0;
      for (let p = 0; p < parts; p++) {
        cumulative += share[p];
        const to = p === parts - 1 ? rows.length : Math.round(cumulative * rows.length);
        draft[p].push(...rows.subarray(from, Math.max(from, to)));
        from = Math.max(from, to);
      }
    }
    if (draft.every((s) => s.length >= minRows)) {
      draft.forEach((s, p) => shards[p].push(...s));
      return;
    }
  }
  throw new Error(`no Dirichlet(${alpha}) draw in 1000 gave each of ${parts} parts at least ${minRows} rows; raise alpha or lower min_rows`);
}

/** A draw from the symmetric Dirichlet(alpha) over k outcomes: normalised Gamma(alpha, 1) draws. */
function dirichlet(k: number, alpha: number, rand: () => number): number[] {
  const g = Array.from({ length: k }, () => gamma(alpha, rand));
  const sum = g.reduce((a, b) => a + b, 0);
  return sum > 0 ? g.map((x) => x / sum) : g.map((_, i) => (i === Math.floor(rand() * k) ? 1 : 0));
}

/** Marsaglia and Tsang's method; shape < 1 through Gamma(shape + 1) * U^(1/shape). */
function gamma(shape: number, rand: () => number): number {
  if (shape < 1) return gamma(shape + 1, rand) * Math.pow(1 - rand(), 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = normal(rand);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = 1 - rand();
    if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

/** Box-Muller. */
function normal(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

