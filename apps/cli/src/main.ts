import { DataSource } from 'typeorm';
import { shellLine } from '@fl/messaging';
import { createDataSource, runMigrations, startEmbeddedPostgres, EmbeddedPostgres } from '@fl/persistence';
import { ModelRegistry } from '@fl/registry';
import { findUseCase } from '@fl/datasets';
import { createDatabaseIfMissing, createRegistry, loadConfig, loadDotEnv, publishDefaultModel, registrySettingsFrom, resolveUseCase } from '@fl/runtime';
import { CliConfig } from './config';
import { buildImportPackage, MAX_ONNX_IMPORT_BYTES, parseImportArgs, publishImportedPackage, readOnnxFile } from './models-import';
import { enrolSite, EnrolResult, revokeSite, RevokeResult } from './nodes';
import { UsageError } from './usage-error';

const USAGE = `usage: npm run cli -- <command>

  models publish <use case> [--json]   publish the use case's default model; prints name and version
  models import <file.onnx> --use-case <name> --loss <loss> [--optimizer sgd|momentum|adam|adamw]
        [--name <model name>] [--learning-rate <lr>] [--no-normalization] [--json]
                                       make an ONNX graph (e.g. from torch.onnx.export) a trainable model
                                       package for the use case (a file one, or one stored at the gateway)
                                       and publish it; loss: softmax_cross_entropy,
                                       binary_cross_entropy_with_logits or mean_squared_error
  models list [--json]                 list registered models
  nodes enroll <site> [--json]         give a site its own RabbitMQ user; prints the site's configuration
  nodes revoke <site> [--json]         remove the site's RabbitMQ user; coordinators stop using it at once

The registry is REGISTRY_BACKEND's: local (DATABASE_URL and ARTIFACT_DIR;
without DATABASE_URL an embedded PostgreSQL keeps its data in EMBEDDED_PG_DIR,
default ./.data/pglite) or mlflow (MLFLOW_TRACKING_URI).
nodes commands act on the broker of AMQP_URL (an administrator's URL, its vhost
is the platform's) through RABBITMQ_MANAGEMENT_URL, or print the rabbitmqctl
commands to run when that is unset; they record the change in DATABASE_URL's
node list and audit log.`;

/** `ds`: the platform's database (use cases stored at the gateway live there); none for MLflow without DATABASE_URL. */
async function withRegistry<T>(config: CliConfig, fn: (r: ModelRegistry, ds?: DataSource) => Promise<T>): Promise<T> {
  const settings = registrySettingsFrom(config);
  if (settings.backend === 'mlflow') {
    if (!config.DATABASE_URL) return fn(createRegistry(settings));
    return withDatabase(config, (ds) => fn(createRegistry(settings), ds));
  }
  return withDatabase(config, (ds) => fn(createRegistry(settings, ds), ds));
}

async function withDatabase<T>(config: CliConfig, fn: (ds: DataSource) => Promise<T>): Promise<T> {
  let embedded: EmbeddedPostgres | undefined;
  const url = config.DATABASE_URL ?? (embedded = await startEmbeddedPostgres({ dataDir: config.EMBEDDED_PG_DIR })).url;
  if (!embedded) await createDatabaseIfMissing(url);
  const ds = createDataSource({ url, poolSize: embedded ? 1 : 2, applicationName: 'fl-cli' });
  try {
    await ds.initialize();
    await runMigrations(ds);
    return await fn(ds);
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
    const { version, created } = await withRegistry(config, (r, dataSource) => publishDefaultModel(r, arg, { dataSource }));
    if (json) console.log(JSON.stringify({ name: version.name, version: version.version }));
    else console.log(`${created ? 'published' : 'already published'}: model '${version.name}' version ${version.version}`);
    return;
  }
  if (group === 'models' && command === 'import') {
    const importArgs = parseImportArgs(args.slice(2));
    // Everything is checked before the registry is touched: a bad file publishes nothing.
    const onnx = readOnnxFile(importArgs.file, MAX_ONNX_IMPORT_BYTES);
    // A file use case is checked before any connection; a stored one (POST /use-cases) is read from the database first.
    const fileUseCase = findUseCase(importArgs.useCase);
    const built = fileUseCase ? buildImportPackage(importArgs, onnx, fileUseCase) : undefined;
    const { pkg, useCase, version, created } = await withRegistry(config, async (r, dataSource) => {
      const { pkg, useCase } = built ?? buildImportPackage(importArgs, onnx, await resolveUseCase(importArgs.useCase, dataSource));
      return { pkg, useCase, ...(await publishImportedPackage(r, pkg, useCase.name)) };
    });
    if (json) console.log(JSON.stringify({ name: version.name, version: version.version }));
    else {
      const m = pkg.manifest;
      console.log(`${created ? 'published' : 'already published'}: model '${version.name}' version ${version.version}`);
      console.log(`  imported ${importArgs.file} for use case '${useCase.name}': ${m.parameters.length} weight tensors, loss ${m.loss}, ${importArgs.optimizer}`);
    }
    return;
  }
  if (group === 'models' && command === 'list') {
    const models = await withRegistry(config, (r) => r.listModels());
    if (json) console.log(JSON.stringify(models));
    else for (const m of models) console.log(`${m.name}\tlatest version ${m.latestVersion ?? '-'}\t${m.description ?? ''}`);
    return;
  }
  if (group === 'nodes' && (command === 'enroll' || command === 'revoke')) {
    if (!arg) throw new UsageError(`nodes ${command} needs a site name, e.g. \`npm run cli -- nodes ${command} site-1\``);
    const result = await withDatabase(config, (ds) => (command === 'enroll' ? enrolSite(config, ds, arg) : revokeSite(config, ds, arg)));
    if (json) console.log(JSON.stringify(result));
    else console.log(command === 'enroll' ? describeEnrolment(result as EnrolResult) : describeRevocation(result as RevokeResult));
    return;
  }
  throw new UsageError(args.length ? `unknown command: ${args.join(' ')}` : 'no command given');
}

function describeEnrolment(r: EnrolResult): string {
  const lines = r.applied
    ? [`enrolled site '${r.node}': broker user '${r.user}' created on vhost '${r.vhost}' through the management API`]
    : [
        `enrolled site '${r.node}': RABBITMQ_MANAGEMENT_URL is not set, so run these on the broker host to create its user:`,
        ...r.commands.map((c) => `  ${shellLine(c)}`),
      ];
  lines.push('', `# the site's configuration (AMQP_URL holds its password, shown only now):`, `NODE_NAME=${r.env.NODE_NAME}`, `AMQP_URL=${r.env.AMQP_URL}`);
  return lines.join('\n');
}

function describeRevocation(r: RevokeResult): string {
  const lines = [`revoked site '${r.node}': marked revoked, coordinators told to stop using it`];
  if (r.applied) lines.push(`broker user '${r.user}' deleted through the management API (its connections are closed)`);
  else lines.push(`RABBITMQ_MANAGEMENT_URL is not set: run this on the broker host to delete its user and close its connections:`, ...r.commands.map((c) => `  ${shellLine(c)}`));
  return lines.join('\n');
}

main(process.argv.slice(2)).catch((err) => {
  console.error(`error: ${err instanceof Error ? err.message : err}`);
  if (err instanceof UsageError) console.error(`\n${USAGE}`);
  process.exit(err instanceof UsageError ? 2 : 1);
});
