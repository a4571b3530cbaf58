import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** Writes bench-results/<name>.json (relative to the working directory, i.e. the repository root under `npm run bench`). */
export function writeResult(name: string, data: unknown): string {
  const dir = resolve('bench-results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  writeFileSync(file, `${JSON.stringify({ benchmark: name, node: process.version, finishedAt: new Date().toISOString(), ...(data as object) }, null, 2)}\n`);
  return file;
}
