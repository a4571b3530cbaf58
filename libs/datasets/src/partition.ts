import { CsvTable } from './csv';
import { seededPermutation } from './prng';

/**
 * Splits a table's rows into `parts` disjoint shards of near-equal size, for
 * simulating sites. 'iid' shuffles first (seeded); 'ordered' keeps file order,
 * which on a class-sorted file gives each site mostly one class.
 */
export function partitionTable(table: CsvTable, parts: number, seed: number, mode: 'iid' | 'ordered' = 'iid'): CsvTable[] {
  if (!Number.isInteger(parts) || parts < 1 || parts > table.rows.length) {
    throw new Error(`cannot split ${table.rows.length} rows into ${parts} parts`);
  }
  const order = mode === 'iid' ? Array.from(seededPermutation(table.rows.length, seed)) : table.rows.map((_, i) => i);
  const shards: CsvTable[] = [];
  for (let p = 0; p < parts; p++) {
    const from = Math.floor((p * order.length) / parts);
    const to = Math.floor(((p + 1) * order.length) / parts);
    const idx = order.slice(from, to).sort((a, b) => a - b);
    shards.push({ header: table.header, rows: idx.map((i) => table.rows[i]), lines: idx.map((i) => table.lines[i]) });
  }
  return shards;
}
