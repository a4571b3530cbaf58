import { CoordinatorConfig } from '../config';
import { DeletedTasksRepository, PurgeOutcome } from './deleted-tasks.repository';
import { TaskPurge } from './task-purge.service';

/** coordinator.deleted_tasks and the purge, in memory: tasks can be marked running (lease held) or failing (a deadlock, say). */
class DeletionLedger {
  readonly deleted = new Set<number>();
  readonly purged: number[] = [];
  readonly running = new Set<number>();
  readonly failing = new Set<number>();
  recordFails = false;
  /** Each purge waits for this before it answers, when set. */
  gate?: Promise<void>;

  async record(ids: number[]): Promise<void> {
    if (this.recordFails) throw new Error('connection terminated');
    ids.forEach((id) => this.deleted.add(id));
  }

  async unpurged(afterId: number, limit: number): Promise<number[]> {
    return [...this.deleted].filter((id) => id > afterId && !this.purged.includes(id)).sort((a, b) => a - b).slice(0, limit);
  }

  async purge(taskId: number): Promise<PurgeOutcome> {
    await this.gate;
    if (this.failing.has(taskId)) throw new Error('deadlock detected');
    if (this.running.has(taskId)) return { outcome: 'running' };
    this.purged.push(taskId);
    return { outcome: 'purged', rows: { task_runs: 1, rounds: 0, round_participants: 0, checkpoints: 0, checkpoint_chunks: 0 } };
  }
}

describe('TaskPurge', () => {
  let ledger: DeletionLedger;
  let sut: TaskPurge;

  beforeEach(() => {
    ledger = new DeletionLedger();
    sut = new TaskPurge(ledger as unknown as DeletedTasksRepository, Object.assign(new CoordinatorConfig(), { SWEEP_INTERVAL_S: 5 }));
  });

  afterEach(async () => {
    await sut.onApplicationShutdown();
    jest.useRealTimers();
  });

  it('records a deletion before acknowledging it, then purges what nothing runs', async () => {
    ledger.running.add(2);
    await sut.deleted([1, 2, 3]);
    expect([...ledger.deleted]).toEqual([1, 2, 3]);
    await sut.sweep();
    expect(ledger.purged).toEqual([1, 3]);
  });

  it('stops waiting for a running task once another coordinator has purged it', async () => {
    ledger.running.add(2);
    await sut.deleted([1, 2]);
    await sut.sweep();
    expect(sut.awaitingRunners).toEqual([2]);
    await sut.sweep();
    expect(sut.awaitingRunners).toEqual([2]);
    // The other coordinator ran it, and purged it once it stopped.
    ledger.running.delete(2);
    ledger.purged.push(2);
    await sut.sweep();
    expect(sut.awaitingRunners).toEqual([]);
  });

  it('lets the message fail (not acknowledged) when the deletion could not be recorded', async () => {
    ledger.recordFails = true;
    await expect(sut.deleted([1])).rejects.toThrow('connection terminated');
    await sut.sweep();
    expect(ledger.purged).toEqual([]);
  });

  it('purges a running task once its runner has stopped, and one whose purge failed at the next sweep', async () => {
    await ledger.record([1, 2, 3]);
    ledger.running.add(1);
    ledger.failing.add(2);
    await sut.sweep();
    expect(ledger.purged).toEqual([3]);
    await sut.sweep();
    expect(ledger.purged).toEqual([3]);
    ledger.running.delete(1);
    ledger.failing.delete(2);
    await sut.sweep();
    expect(ledger.purged).toEqual([3, 1, 2]);
  });

  it('goes through every deleted task, page after page, those still running included', async () => {
    const ids = Array.from({ length: 250 }, (_, i) => i + 1);
    await ledger.record(ids);
    [50, 100, 150, 200].forEach((id) => ledger.running.add(id));
    await sut.sweep();
    expect(ledger.purged).toEqual(ids.filter((id) => id % 50 !== 0 || id > 200));
  });

  it('sweeps at start and every SWEEP_INTERVAL_S; on shutdown it stops and waits for the purge in flight', async () => {
    jest.useFakeTimers();
    await ledger.record([1]);
    sut.onApplicationBootstrap();
    await jest.advanceTimersByTimeAsync(0);
    expect(ledger.purged).toEqual([1]);
    await ledger.record([2]);
    await jest.advanceTimersByTimeAsync(4_999);
    expect(ledger.purged).toEqual([1]);
    await jest.advanceTimersByTimeAsync(1);
    expect(ledger.purged).toEqual([1, 2]);

    let open!: () => void;
    ledger.gate = new Promise((resolve) => (open = resolve));
    await ledger.record([3]);
    await jest.advanceTimersByTimeAsync(5_000);
    let stopped = false;
    const shutdown = sut.onApplicationShutdown().then(() => (stopped = true));
    await jest.advanceTimersByTimeAsync(0);
    expect(stopped).toBe(false);
    open();
    await shutdown;
    expect(ledger.purged).toEqual([1, 2, 3]);
    // Stopped: no more sweeps.
    await ledger.record([4]);
    await jest.advanceTimersByTimeAsync(60_000);
    await sut.sweep();
    expect(ledger.purged).toEqual([1, 2, 3]);
  });
});
