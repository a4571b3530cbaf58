import { Injectable } from '@nestjs/common';

interface Kept {
  sha256: string;
  weights: Buffer;
  at: number;
}

/**
 * Global weights kept from an evaluation for the same task's next fit.
 *
 * A round's evaluation and the next round's fit carry the same weights (the
 * round's aggregate). When the evaluation asks to keep them and this site
 * does, its answer says so, and the coordinator sends the next fit without
 * them once every site asked to fit has confirmed: each site receives the
 * model once per round instead of twice.
 *
 * One entry per task, used once. Nothing is ever dropped that was confirmed
 * and is still young: when the bounds are reached, only entries older than
 * STALE_MS (their task ended or moved on) make room; otherwise the new
 * weights are not kept, not confirmed, and come attached as before.
 */
@Injectable()
export class KeptWeights {
  static readonly MAX_BYTES = 512 * 1024 * 1024;
  static readonly MAX_TASKS = 64;
  static readonly STALE_MS = 10 * 60_000;
  private readonly byTask = new Map<number, Kept>();
  private bytes = 0;

  /** The time in ms; a test sets its own. */
  now: () => number = Date.now;

  /**
   * Keeps the weights as received, not a copy: a delivery's buffer is its own and is never reused
   * (nor changed: training reads the global weights, and the in-memory bus hands the same buffer to
   * every worker). Returns whether they were kept.
   */
  keep(taskId: number, sha256: string, weights: Buffer): boolean {
    this.drop(taskId);
    const fits = () => this.bytes + weights.length <= KeptWeights.MAX_BYTES && this.byTask.size < KeptWeights.MAX_TASKS;
    if (!fits()) {
      const cutoff = this.now() - KeptWeights.STALE_MS;
      for (const [task, k] of this.byTask) if (k.at < cutoff) this.drop(task);
    }
    if (!fits()) return false;
    this.byTask.set(taskId, { sha256, weights, at: this.now() });
    this.bytes += weights.length;
    return true;
  }

  /** The weights kept for the task if they are the ones named, given up by the store; undefined otherwise. */
  take(taskId: number, sha256: string): Buffer | undefined {
    const k = this.byTask.get(taskId);
    if (!k || k.sha256 !== sha256) return undefined;
    this.drop(taskId);
    return k.weights;
  }

  get keptBytes(): number {
    return this.bytes;
  }

  private drop(taskId: number): void {
    const k = this.byTask.get(taskId);
    if (!k) return;
    this.byTask.delete(taskId);
    this.bytes -= k.weights.length;
  }
}
