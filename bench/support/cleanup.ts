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

/** Runs `body` with a fresh Cleanup and always runs it afterwards. */
export async function withCleanup<T>(body: (cleanup: Cleanup) => Promise<T>): Promise<T> {
  const cleanup = new Cleanup();
  try {
    return await body(cleanup);
  } finally {
    await cleanup.run();
  }
}
