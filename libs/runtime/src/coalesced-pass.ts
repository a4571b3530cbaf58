/**
 * Runs an idempotent pass over stored work (a sweep, an outbox flush) one at a
 * time. A call while a pass runs joins it, and the pass runs once more when it
 * ends, so that what the caller stored just before calling is seen; however
 * many calls come meanwhile, one more pass.
 */
export class CoalescedPass {
  private running?: Promise<void>;
  private again = false;

  constructor(private readonly pass: () => Promise<void>) {}

  run(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.pass();
        } while (this.again);
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  /** Resolves once no pass runs (whether the last one failed or not): for shutdown. */
  async idle(): Promise<void> {
    while (this.running) await this.running.catch(() => undefined);
  }
}
