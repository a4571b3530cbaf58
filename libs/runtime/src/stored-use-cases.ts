import { DataSource } from 'typeorm';
import { findUseCase, listUseCases, parseUseCase, UseCaseDefinition } from '@fl/datasets';

/** Use cases added through the gateway (`POST /use-cases`), kept in gateway.use_cases. */
export async function readStoredUseCases(ds: DataSource): Promise<UseCaseDefinition[]> {
  const rows: { name: string; definition: unknown }[] = await ds.query(`SELECT name, definition FROM gateway.use_cases ORDER BY name`);
  return rows.map((r) => parseUseCase(r.definition, `stored use case '${r.name}'`));
}

export async function readStoredUseCase(ds: DataSource, name: string): Promise<UseCaseDefinition | undefined> {
  const rows: { definition: unknown }[] = await ds.query(`SELECT definition FROM gateway.use_cases WHERE name = $1`, [name]);
  return rows.length ? parseUseCase(rows[0].definition, `stored use case '${name}'`) : undefined;
}

export class UnknownStoredUseCaseError extends Error {
  constructor(name: string, searchedDatabase: boolean) {
    super(
      `unknown use case '${name}' (files: ${listUseCases().map((u) => u.name).join(', ')}` +
        (searchedDatabase ? '; none stored at the gateway by that name)' : '; stored use cases were not searched: no database)'),
    );
    this.name = 'UnknownStoredUseCaseError';
  }
}

/**
 * A use case by name: a file one (shipped or USE_CASES_DIR), else one stored at
 * the gateway, read from `ds` (the platform's database; without it only files
 * are searched). Throws UnknownStoredUseCaseError naming it when neither has it.
 */
export async function resolveUseCase(name: string, ds: DataSource | undefined): Promise<UseCaseDefinition> {
  const uc = findUseCase(name) ?? (ds ? await readStoredUseCase(ds, name) : undefined);
  if (!uc) throw new UnknownStoredUseCaseError(name, ds !== undefined);
  return uc;
}
