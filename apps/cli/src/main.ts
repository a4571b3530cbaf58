import { createDataSource, runMigrations, startEmbeddedPostgres, EmbeddedPostgres } from '@fl/persistence';
import { ModelRegistry } from '@fl/registry';
import { createDatabaseIfMissing, createRegistry, loadConfig, loadDotEnv, publishDefaultModel, registrySettingsFrom } from '@fl/runtime';
import { CliConfig } from './config';

const USAGE = `usage: npm run cli -- <command>

  models publish <use case> [--json]   publish the use case's default model; prints name and version
  models list [--json]                 list registered models

The registry is REGISTRY_BACKEND's: local (DATABASE_URL and ARTIFACT_DIR;
without DATABASE_URL an embedded PostgreSQL keeps its data in EMBEDDED_PG_DIR,
default ./.data/pglite) or mlflow (MLFLOW_TRACKING_URI).`;

class UsageError extends Error {}

async function withRegistry<T>(config: CliConfig, fn: (r: ModelRegistry) => Promise<T>): Promise<T> {
  const settings = registrySettingsFrom(config);
  if (settings.backend === 'mlflow') return fn(createRegistry(settings));
  let embedded: EmbeddedPostgres | undefined;
  const url = config.DATABASE_URL ?? (embedded = await startEmbeddedPostgres({ dataDir: config.EMBEDDED_PG_DIR })).url;
  if (!embedded) await createDatabaseIfMissing(url);
  const ds = createDataSource({ url, poolSize: embedded ? 1 : 2, applicationName: 'fl-cli' });
  try {
    await ds.initialize();
    await runMigrations(ds);
    return await fn(createRegistry(settings, ds));
  } finally {
    if (ds.isInitialized) await ds.destroy();
    await embedded?.close();
  }
}

async function main(argv: string[]): Promise<void> {
  const json = argv.includes('--json');
  const args = argv.filter((a) => a !== '--json');
  loadDotEnv();
  const config = loadConfig(CliConfig, process.env);
  const [group, command, arg] = args;
  if (group === 'models' && command === 'publish') {
    if (!arg) throw new UsageError('models publish needs a use case, e.g. `npm run cli -- models publish iris`');
    const { version, created } = await withRegistry(config, (r) => publishDefaultModel(r, arg));
    if (json) console.log(JSON.stringify({ name: version.name, version: version.version }));
    else console.log(`${created ? 'published' : 'already published'}: model '${version.name}' version ${version.version}`);
    return;
  }
  if (group === 'models' && command === 'list') {
    const models = await withRegistry(config, (r) => r.listModels());
    if (json) console.log(JSON.stringify(models));
    else for (const m of models) console.log(`${m.name}\tlatest version ${m.latestVersion ?? '-'}\t${m.description ?? ''}`);
    return;
  }
  throw new UsageError(args.length ? `unknown command: ${args.join(' ')}` : 'no command given');
}

main(process.argv.slice(2)).catch((err) => {
  console.error(`error: ${err instanceof Error ? err.message : err}`);
  if (err instanceof UsageError) console.error(`\n${USAGE}`);
  process.exit(err instanceof UsageError ? 2 : 1);
});
