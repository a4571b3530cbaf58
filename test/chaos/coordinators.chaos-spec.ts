import { Platform } from '../support/platform';
import { expectCleanSuccess, irisTasks, roundReached } from './tasks';

/**
 * A coordinator SIGKILLed mid-task (no hand-back: its lease has to lapse).
 * Another coordinator, or the same one started again, takes the task when
 * the lease expires and resumes after the last completed round from its
 * checkpoint: no completed round is run or aggregated again.
 */
describe('chaos: coordinators killed mid-task', () => {
  const leaseTtlS = 4;
  const platform = new Platform();
  let startTask: (settings: Record<string, unknown>) => Promise<number>;

  beforeAll(async () => {
    await platform.start({ sites: 3, coordinators: 2, coordinatorEnv: { LEASE_TTL_S: String(leaseTtlS) } });
    startTask = await irisTasks(platform);
  }, 120_000);

  afterAll(() => platform.stop(), 60_000);

  interface Snapshot {
    lastRound: number;
    leaseExpiresAt: Date;
    rounds: { round: number; finished_at: Date; sha256: string; created_at: Date }[];
  }

  const owner = async (id: number) =>
    (await platform.query<{ owner: string | null }>(`SELECT owner FROM coordinator.task_runs WHERE task_id = $1`, [id]))[0]?.owner;

  /** What the dead coordinator left: completed rounds with their checkpoints, and when its lease runs out. */
  async function snapshot(id: number): Promise<Snapshot> {
    const rounds = await platform.query<Snapshot['rounds'][number]>(
      `SELECT r.round, r.finished_at, c.sha256, c.created_at FROM coordinator.rounds r
       JOIN coordinator.checkpoints c ON c.task_id = r.task_id AND c.round = r.round
       WHERE r.task_id = $1 AND r.status = 'completed' ORDER BY r.round`,
      [id],
    );
    const [run] = await platform.query<{ lease_expires_at: Date; current_round: number }>(
      `SELECT lease_expires_at, current_round FROM coordinator.task_runs WHERE task_id = $1`,
      [id],
    );
    expect(run.current_round).toBe(rounds.length);
    return { lastRound: rounds.length, leaseExpiresAt: run.lease_expires_at, rounds };
  }

  /** The resumed run started after the lease lapsed, from the last checkpoint, and left the rounds before it as they were. */
  async function expectResumedFrom(id: number, before: Snapshot, by: string, log: string): Promise<void> {
    const now = await snapshot(id);
    expect(now.rounds.slice(0, before.lastRound)).toEqual(before.rounds);
    const [next] = await platform.query<{ started_at: Date }>(`SELECT started_at FROM coordinator.rounds WHERE task_id = $1 AND round = $2`, [id, before.lastRound + 1]);
    expect(next.started_at.getTime()).toBeGreaterThanOrEqual(before.leaseExpiresAt.getTime());
    const resumed = platform.jsonLogLines(log).filter((l) => l.task_id === id && /^resuming after round \d+ from its checkpoint$/.test(String(l.msg)));
    expect(resumed.map((l) => l.msg)).toEqual([`resuming after round ${before.lastRound} from its checkpoint`]);
    expect(await owner(id)).toBe(by);
  }

  it('a second coordinator takes the task over when the lease of a SIGKILLed one expires, and it succeeds', async () => {
    const rounds = 200;
    const id = await startTask({ num_global_iterations: rounds, round_timeout_s: 10, local_epochs: 2 });
    await roundReached(platform, id, 5);
    const holder = await owner(id);
    const [dead, survivor] = holder === 'e2e-coordinator-1' ? ['coordinator-1', 'coordinator-2'] : ['coordinator-2', 'coordinator-1'];
    expect(await platform.kill(dead, 'SIGKILL')).toBe('SIGKILL');
    const before = await snapshot(id);
    expect(before.lastRound).toBeLessThan(rounds);

    await expectCleanSuccess(platform, id, rounds, 120_000);
    await expectResumedFrom(id, before, `e2e-${survivor}`, survivor);
  });

  it('a lone coordinator SIGKILLed and started again resumes the task from its checkpoint, sends the completed rounds\' events again, and it succeeds', async () => {
    // The previous test left one coordinator running.
    const rounds = 200;
    const id = await startTask({ num_global_iterations: rounds, round_timeout_s: 10, local_epochs: 2 });
    await roundReached(platform, id, 5);
    const holder = (await owner(id))!;
    const name = holder.replace(/^e2e-/, '');
    expect(await platform.kill(name, 'SIGKILL')).toBe('SIGKILL');
    const before = await snapshot(id);
    expect(before.lastRound).toBeLessThan(rounds);
    // As if the dead coordinator's round events had not gone out (quick rounds' events go together, behind the
    // rounds): the gateway forgets rounds 3 to 5 (it had them: it counted 5) and the last round, where it had it.
    // The coordinator that resumes sends every completed round again (the run below checks every round is there, once).
    const forgotten = await platform.query<{ n: number }>(
      `WITH gone AS (DELETE FROM gateway.task_events WHERE task_id = $1 AND type = 'round.completed' AND (round BETWEEN 3 AND 5 OR round = $2) RETURNING 1)
       SELECT count(*)::int AS n FROM gone`,
      [id, before.lastRound],
    );
    expect(forgotten[0].n).toBeGreaterThanOrEqual(3);
    platform.restart(name);

    await expectCleanSuccess(platform, id, rounds, 120_000);
    await expectResumedFrom(id, before, holder, name);
  });
});
