import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The data files shipped with the project (found from source and from dist/). */
export function bundledDataDir(): string {
  const candidates = [
    resolve(__dirname, '..', 'data'),
    resolve(__dirname, '..', '..', '..', '..', 'libs', 'datasets', 'data'),
    resolve(process.cwd(), 'libs', 'datasets', 'data'),
  ];
  const found = candidates.find((d) => existsSync(join(d, 'iris.csv')));
  if (!found) throw new Error(`bundled data folder not found (looked in ${candidates.join(', ')})`);
  return found;
}
