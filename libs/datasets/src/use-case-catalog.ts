import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { parseUseCase, UseCaseValidationError } from './use-case-schema';
import { UnknownUseCaseError, UseCaseDefinition } from './use-case';

/** The use case files shipped with the project (found from source and from dist/). */
export function builtInUseCasesDir(): string {
  const candidates = [
    resolve(__dirname, '..', 'use-cases'),
    resolve(__dirname, '..', '..', '..', '..', 'libs', 'datasets', 'use-cases'),
    resolve(process.cwd(), 'libs', 'datasets', 'use-cases'),
  ];
  const found = candidates.find((d) => existsSync(join(d, 'iris.json')));
  if (!found) throw new Error(`use case folder not found (looked in ${candidates.join(', ')})`);
  return found;
}

/** Reads and validates one use case file; its name must be the file's (`iris.json` defines `iris`). */
export function readUseCaseFile(path: string): UseCaseDefinition {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new UseCaseValidationError(path, [{ field: 'file', reason: `not readable JSON: ${(err as Error).message}` }]);
  }
  const uc = parseUseCase(raw, path);
  const stem = basename(path, extname(path));
  if (uc.name !== stem) throw new UseCaseValidationError(path, [{ field: 'name', reason: `must be the file's name '${stem}', got '${uc.name}'` }]);
  return uc;
}

/** Every `*.json` file of a folder, in name order. */
export function readUseCaseFolder(dir: string): UseCaseDefinition[] {
  const st = statSync(dir, { throwIfNoEntry: false });
  if (!st?.isDirectory()) throw new Error(`use case folder ${dir} does not exist or is not a folder`);
  return readdirSync(dir)
    .filter((f) => extname(f).toLowerCase() === '.json')
    .sort()
    .map((f) => readUseCaseFile(join(dir, f)));
}

export type UseCaseOrigin = { kind: 'file'; path: string } | { kind: 'stored' };

/**
 * The use cases a process knows: files (the shipped folder, then
 * USE_CASES_DIR) and definitions added at run time (the gateway adds those
 * stored in its database). A name is defined once: a second definition of a
 * file's name is an error, so that two sites never train different things
 * under one name.
 */
export class UseCaseCatalog {
  private readonly byName = new Map<string, { uc: UseCaseDefinition; origin: UseCaseOrigin }>();

  static fromFolders(folders: string[]): UseCaseCatalog {
    const catalog = new UseCaseCatalog();
    for (const dir of folders) {
      for (const uc of readUseCaseFolder(dir)) {
        const path = join(dir, `${uc.name}.json`);
        const prev = catalog.byName.get(uc.name);
        if (prev) throw new Error(`use case '${uc.name}' is defined twice: ${prev.origin.kind === 'file' ? prev.origin.path : 'stored'} and ${path}`);
        catalog.byName.set(uc.name, { uc, origin: { kind: 'file', path } });
      }
    }
    return catalog;
  }

  list(): UseCaseDefinition[] {
    return [...this.byName.values()].map((e) => e.uc);
  }

  find(name: string): UseCaseDefinition | undefined {
    return this.byName.get(name)?.uc;
  }

  get(name: string): UseCaseDefinition {
    const uc = this.find(name);
    if (!uc) throw new UnknownUseCaseError(name, [...this.byName.keys()]);
    return uc;
  }

  origin(name: string): UseCaseOrigin | undefined {
    return this.byName.get(name)?.origin;
  }

  /** Definitions added at run time, not read from files. */
  stored(): UseCaseDefinition[] {
    return [...this.byName.values()].filter((e) => e.origin.kind === 'stored').map((e) => e.uc);
  }

  /** Adds (or replaces) definitions kept elsewhere, e.g. the gateway's database; never shadows a file. */
  addStored(defs: UseCaseDefinition[]): void {
    for (const uc of defs) {
      if (this.byName.get(uc.name)?.origin.kind === 'file') continue;
      this.byName.set(uc.name, { uc, origin: { kind: 'stored' } });
    }
  }
}

let catalog: { dir: string | undefined; catalog: UseCaseCatalog } | undefined;

/**
 * The process's catalog: the shipped use cases plus the folder named by
 * USE_CASES_DIR (the apps validate the variable at start-up; the catalog is
 * read on first use and again when the variable changes).
 */
export function defaultUseCaseCatalog(): UseCaseCatalog {
  const dir = process.env.USE_CASES_DIR || undefined;
  if (!catalog || catalog.dir !== dir) {
    const next = UseCaseCatalog.fromFolders([builtInUseCasesDir(), ...(dir ? [dir] : [])]);
    if (catalog) next.addStored(catalog.catalog.stored());
    catalog = { dir, catalog: next };
  }
  return catalog.catalog;
}

/** Every use case of this process: the shipped files, USE_CASES_DIR's, and any added at run time. */
export function listUseCases(): UseCaseDefinition[] {
  return defaultUseCaseCatalog().list();
}

export function findUseCase(name: string): UseCaseDefinition | undefined {
  return defaultUseCaseCatalog().find(name);
}

export function getUseCase(name: string): UseCaseDefinition {
  return defaultUseCaseCatalog().get(name);
}

/** Fisher's iris, the predecessor's use case (libs/datasets/use-cases/iris.json). */
export const IRIS: UseCaseDefinition = UseCaseCatalog.fromFolders([builtInUseCasesDir()]).get('iris');
