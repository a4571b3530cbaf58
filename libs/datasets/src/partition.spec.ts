import { join } from 'node:path';
import { readCsvFile } from './csv';
import { loadLabeledCsv } from './labeled-data';
import { partitionRows, partitionTableBy } from './partition';
import { bundledDataDir } from './paths';
import { getUseCase, IRIS } from './use-case-catalog';

const digits = loadLabeledCsv(join(bundledDataDir(), 'digits.csv'), getUseCase('digits'));

function classesOf(rows: Int32Array): Set<number> {
  return new Set(Array.from(rows, (r) => digits.labels[r]));
}

function expectExactCover(shards: Int32Array[], n: number): void {
  const all = shards.flatMap((s) => Array.from(s));
  expect(all).toHaveLength(n);
  expect(new Set(all).size).toBe(n);
  for (const s of shards) expect(Array.from(s)).toEqual(Array.from(s).sort((a, b) => a - b));
}

describe('partitioners', () => {
  it('iid: near-equal shards with every class, deterministic in the seed', () => {
    const shards = partitionRows(digits.labels, 3, { kind: 'iid' }, 5);
    expectExactCover(shards, digits.n);
    expect(shards.map((s) => s.length)).toEqual([599, 599, 599]);
    for (const s of shards) expect(classesOf(s).size).toBe(10);
    expect(partitionRows(digits.labels, 3, { kind: 'iid' }, 5)).toEqual(shards);
    expect(partitionRows(digits.labels, 3, { kind: 'iid' }, 6)).not.toEqual(shards);
  });

  it('by label: each shard holds its classes only, together all of them', () => {
    const shards = partitionRows(digits.labels, 5, { kind: 'label', classes_per_part: 2 }, 1);
    expectExactCover(shards, digits.n);
    for (const s of shards) expect(classesOf(s).size).toBe(2);
    const covered = new Set(shards.flatMap((s) => [...classesOf(s)]));
    expect(covered.size).toBe(10);
    expect(partitionRows(digits.labels, 5, { kind: 'label', classes_per_part: 2 }, 1)).toEqual(shards);
    // 4 shards x 3 classes: two classes are shared by two shards each
    const overlap = partitionRows(digits.labels, 4, { kind: 'label', classes_per_part: 3 }, 2);
    expectExactCover(overlap, digits.n);
    for (const s of overlap) expect(classesOf(s).size).toBe(3);
    expect(() => partitionRows(digits.labels, 3, { kind: 'label', classes_per_part: 2 }, 1)).toThrow('3 parts with 2 class(es) each cannot cover 10 classes');
    expect(() => partitionRows(digits.labels, 3, { kind: 'label', classes_per_part: 0 }, 1)).toThrow('classes_per_part must be an integer in 1..10');
  });

  it('dirichlet: skew grows as alpha shrinks; deterministic; every shard non-empty', () => {
    /** Mean over shards of the share of the shard's most common class. */
    const skew = (shards: Int32Array[]) =>
      shards.reduce((sum, s) => {
        const counts = new Array(10).fill(0);
        for (const r of s) counts[digits.labels[r]]++;
        return sum + Math.max(...counts) / s.length;
      }, 0) / shards.length;
    const strong = partitionRows(digits.labels, 3, { kind: 'dirichlet', alpha: 0.1 }, 3);
    const mild = partitionRows(digits.labels, 3, { kind: 'dirichlet', alpha: 100 }, 3);
    expectExactCover(strong, digits.n);
    expectExactCover(mild, digits.n);
    expect(strong.every((s) => s.length >= 1)).toBe(true);
    expect(skew(mild)).toBeLessThan(0.15);
    expect(skew(strong)).toBeGreaterThan(0.3);
    expect(partitionRows(digits.labels, 3, { kind: 'dirichlet', alpha: 0.1 }, 3)).toEqual(strong);
    expect(partitionRows(digits.labels, 3, { kind: 'dirichlet', alpha: 0.1 }, 4)).not.toEqual(strong);
    const roomy = partitionRows(digits.labels, 3, { kind: 'dirichlet', alpha: 0.5, min_rows: 100 }, 3);
    expect(roomy.every((s) => s.length >= 100)).toBe(true);
    expect(() => partitionRows(digits.labels, 3, { kind: 'dirichlet', alpha: 0 }, 1)).toThrow('alpha must be a positive number, got 0');
    expect(() => partitionRows(digits.labels, 3, { kind: 'dirichlet', alpha: 1, min_rows: 700 }, 1)).toThrow('cannot give each of 3 parts at least 700 of 1797 rows');
  });

  it('partitions a CSV table by its label column', () => {
    const table = readCsvFile(join(bundledDataDir(), 'iris.csv'));
    const shards = partitionTableBy(table, IRIS, 3, { kind: 'label', classes_per_part: 1 }, 1);
    expect(shards.map((s) => s.rows.length)).toEqual([50, 50, 50]);
    for (const s of shards) expect(new Set(s.rows.map((r) => r[4])).size).toBe(1);
    expect(new Set(shards.flatMap((s) => s.lines)).size).toBe(150);
  });
});
