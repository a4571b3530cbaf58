/**
 * Child-process entry for startEmbeddedPostgres({ mode: 'child-process' }).
 * argv: [entry, JSON options]. Talks to the parent over IPC; exits when told to
 * close or when the parent goes away (IPC disconnect), releasing the lock file.
 */
import { EmbeddedChildMessage, EmbeddedPostgresOptions, startEmbeddedPostgresInProcess } from './embedded-postgres';

async function main(): Promise<void> {
  const send = (m: EmbeddedChildMessage) => process.send?.(m);
  const opts = JSON.parse(process.argv[process.argv.length - 1]) as EmbeddedPostgresOptions;
  let server;
  try {
    server = await startEmbeddedPostgresInProcess(opts);
  } catch (err: any) {
    send({ type: 'error', name: err?.name ?? 'Error', message: String(err?.message ?? err), dataDir: err?.dataDir, holderPid: err?.holderPid });
    process.disconnect?.();
    process.exitCode = 1;
    return;
  }
  const srv = server;
  let closing = false;
  const shutdown = async () => {
    if (closing) return;
    closing = true;
    try {
      await srv.close();
    } finally {
      if (process.connected) process.disconnect();
      process.exit(0);
    }
  };
  process.on('message', (m: { type?: string }) => {
    if (m?.type === 'close') void shutdown();
  });
  process.on('disconnect', () => void shutdown());
  process.on('SIGTERM', () => void shutdown());
  process.on('SIGINT', () => void shutdown());
  send({ type: 'ready', url: srv.url, host: srv.host, port: srv.port, dataDir: srv.dataDir });
}

void main();
