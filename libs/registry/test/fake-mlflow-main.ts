/**
 * TEST DOUBLE entry point: runs the fake MLflow server as its own process, e.g. for an
 * e2e suite whose apps need a tracking server.
 *
 *   port:  argv[2], else FAKE_MLFLOW_PORT, else 0 (any free port)
 *   host:  FAKE_MLFLOW_HOST (default 127.0.0.1)
 *   auth:  FAKE_MLFLOW_USERNAME + FAKE_MLFLOW_PASSWORD, or FAKE_MLFLOW_TOKEN (optional)
 *
 * Prints one line, `FAKE_MLFLOW_URL=<url>`, once it listens; stops on SIGTERM/SIGINT.
 * The build excludes test/, and it imports only node: modules, so compile it on its own:
 *   npx tsc --outDir /tmp/fake-mlflow --module commonjs --target es2022 --types node \
 *     libs/registry/test/fake-mlflow-main.ts && node /tmp/fake-mlflow/fake-mlflow-main.js 5055
 */
import { startFakeMlflow } from './fake-mlflow-server';

async function main(): Promise<void> {
  const env = process.env;
  const port = Number(process.argv[2] ?? env.FAKE_MLFLOW_PORT ?? 0);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid port ${process.argv[2] ?? env.FAKE_MLFLOW_PORT}`);
  const requireAuth = env.FAKE_MLFLOW_TOKEN
    ? { token: env.FAKE_MLFLOW_TOKEN }
    : env.FAKE_MLFLOW_USERNAME
      ? { username: env.FAKE_MLFLOW_USERNAME, password: env.FAKE_MLFLOW_PASSWORD ?? '' }
      : undefined;
  const fake = await startFakeMlflow({ port, host: env.FAKE_MLFLOW_HOST, requireAuth });
  process.stdout.write(`FAKE_MLFLOW_URL=${fake.url}\n`);
  const stop = () => void fake.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err) => {
  process.stderr.write(`fake MLflow failed to start: ${err?.message ?? err}\n`);
  process.exit(1);
});
