/**
 * What a benchmark created, undone in reverse order by `run()`, each step
 * even when an earlier one failed (failures are reported, not thrown, so the
 * benchmark's own error is the one that surfaces).
 */
export class Cleanup {
  private readonly steps: { what: string; undo: () => Promise<unknown> | unknown }[] = [];

  add(what: string, undo: () => Promise<unknown> | unknown): void {
    this.steps.push({ what, undo });
  }

  async run(): Promise<void> {
    while (this.steps.length) {
      const { what, undo } = this.steps.pop()!;
      try {
        await undo();
      } catch (err) {
        console.error(`bench cleanup: ${what} failed: ${(err as Error)?.message ?? err}`);
      }
    }
  }
}

/** The cleanups of the benchmarks running in this process, newest last. */
const active: Cleanup[] = [];

/**
 * A benchmark stopped by SIGINT or SIGTERM (Ctrl-C, `kill`) still stops the
 * processes it started and deletes its vhost and database: left behind, they
 * keep running against the broker and weigh on every later measurement.
 * Then the process exits as the signal would have ended it (130, 143).
 */
function onSignal(signal: NodeJS.Signals): void {
  console.error(`bench: ${signal}: cleaning up before exiting`);
  const code = signal === 'SIGINT' ? 130 : 143;
  void (async () => {
    for (const cleanup of [...active].reverse()) await cleanup.run();
  })().finally(() => process.exit(code));
}

/** Runs `body` with a fresh Cleanup and always runs it afterwards, also when the process is told to stop. */
export async function withCleanup<T>(body: (cleanup: Cleanup) => Promise<T>): Promise<T> {
  const cleanup = new Cleanup();
  if (active.length === 0) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  active.push(cleanup);
  try {
    return await body(cleanup);
  } finally {
    active.splice(active.indexOf(cleanup), 1);
    if (active.length === 0) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    await cleanup.run();
  }
}
