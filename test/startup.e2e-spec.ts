import { execFile } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..');

/** Runs a compiled app with exactly this environment and returns how it ended. */
function runApp(app: string, env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(ROOT, 'dist/apps', app, 'src/main.js')], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as NodeJS.ErrnoException & { code?: number }).code as unknown as number) ?? 1 : 0, output: `${stdout}${stderr}` });
    });
  });
}

/** A missing or malformed variable stops an app at start-up, naming the variable; nothing half-starts. */
describe('configuration validated at start-up', () => {
  it('a malformed variable stops the gateway, naming it and what it got', async () => {
    const r = await runApp('gateway', { LOG_FORMAT: 'pretty', DB_POOL_SIZE: 'many', PORT: '99999', AMQP_URL: 'amqp://x', DATABASE_URL: 'postgres://x/y' });
    expect(r.code).toBe(1);
    expect(r.output).toContain('DB_POOL_SIZE');
    expect(r.output).toContain("PORT must not be greater than 65535 (got '99999')");
  });

  it('a coordinator without a broker says which variable is missing and why', async () => {
    const r = await runApp('coordinator', { LOG_FORMAT: 'pretty', DATABASE_URL: 'postgres://x/y' });
    expect(r.code).toBe(1);
    expect(r.output).toContain('AMQP_URL is required to run the coordinator as its own process');
  });

  it('an edge worker with a name that cannot be a queue name refuses to start', async () => {
    const r = await runApp('edge-worker', { LOG_FORMAT: 'pretty', NODE_NAME: 'site one', DATA_PATH: 'libs/datasets/data/iris.csv', AMQP_URL: 'amqp://x' });
    expect(r.code).toBe(1);
    expect(r.output).toContain('NODE_NAME must be 1-64 letters, digits, _ or -');
  });

  it('with REGISTRY_BACKEND=mlflow, a missing tracking URI is named', async () => {
    const r = await runApp('gateway', { LOG_FORMAT: 'pretty', AUTH_MODE: 'none', REGISTRY_BACKEND: 'mlflow', AMQP_URL: 'amqp://x', DATABASE_URL: 'postgres://x/y' });
    expect(r.code).toBe(1);
    expect(r.output).toContain('MLFLOW_TRACKING_URI (or MLFLOW_URL) is required with REGISTRY_BACKEND=mlflow');
  });

  it('a gateway without its identity provider refuses to start, and so does one without authentication in production', async () => {
    const oidc = await runApp('gateway', { LOG_FORMAT: 'pretty', AMQP_URL: 'amqp://x', DATABASE_URL: 'postgres://x/y', AUTH_AUDIENCE: 'fl' });
    expect(oidc.code).toBe(1);
    expect(oidc.output).toContain('AUTH_ISSUER is required with AUTH_MODE=oidc');
    expect(oidc.output).toContain('AUTH_JWKS_URL is required with AUTH_MODE=oidc');
    const none = await runApp('gateway', { LOG_FORMAT: 'pretty', NODE_ENV: 'production', AUTH_MODE: 'none', AMQP_URL: 'amqp://x', DATABASE_URL: 'postgres://x/y' });
    expect(none.code).toBe(1);
    expect(none.output).toContain('AUTH_MODE=none is refused with NODE_ENV=production');
  });
});
