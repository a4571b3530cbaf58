import { readFileSync } from 'node:fs';

export interface CsvTable {
  header: string[];
  rows: string[][];
  /** 1-based line number of each row in the file, for error messages */
  lines: number[];
}

/**
 * Parses simple comma-separated text as the predecessor's sites wrote it: a
 * header line, one record per line, no quoting. Blank lines are skipped.
 */
export function parseCsv(text: string, source = 'csv'): CsvTable {
  const all = text.split(/\r?\n/);
  let headerIdx = all.findIndex((l) => l.trim() !== '');
  if (headerIdx < 0) throw new Error(`${source}: no header line`);
  const header = all[headerIdx].split(',').map((h) => h.trim());
  const rows: string[][] = [];
  const lines: number[] = [];
  for (let i = headerIdx + 1; i < all.length; i++) {
    if (all[i].trim() === '') continue;
    const cells = all[i].split(',').map((c) => c.trim());
    if (cells.length !== header.length) {
      throw new Error(`${source}:${i + 1}: expected ${header.length} fields, found ${cells.length}`);
    }
    rows.push(cells);
    lines.push(i + 1);
  }
  return { header, rows, lines };
}

export function readCsvFile(path: string): CsvTable {
  return parseCsv(readFileSync(path, 'utf8'), path);
}

export function formatCsv(header: string[], rows: string[][]): string {
  return [header.join(','), ...rows.map((r) => r.join(','))].join('\n') + '\n';
}
