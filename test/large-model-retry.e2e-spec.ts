import { Platform } from './support/platform';

/**
 * A round of a large model run again. In large-model mode (LARGE_MODEL_BYTES,
 * lowered here to 1 byte so that iris's small model takes the path) the
 * coordinator lets go of the global weights once they are sent, and a round
 * that has to be run again reads them back from the last checkpoint. A site
 * stalls (SIGSTOP) for one round: the round runs short of updates, is run
 * again from the checkpoint of the round before, the site comes back, and the
 * task finishes with every round once. The coordinator keeps the last two
 * rounds' checkpoints (CHECKPOINTS_KEPT=2), enough to resume and to retry.
 */
describe('a large model whose round is run again', () => {
  const platform = new Platform();
  let model: { name: string; version: number };

  beforeAll(async () => {
    await platform.start({ sites: 3, coordinators: 1, coordinatorEnv: { ROUND_RETRIES: '3', LARGE_MODEL_BYTES: '1', CHECKPOINTS_KEPT: '2' } });
    model = JSON.parse(await platform.cli('models', 'publish', 'iris', '--json'));
  }, 120_000);

  afterAll(() => platform.stop(), 60_000);

  const logged = () => platform.jsonLogLines('coordinator-1').map((l) => String(l.msg));

  it('reads the global weights back from the last checkpoint, and completes every round once', async () => {
    // Enough rounds, each with some training, that the task is still running when the poll below sees round 2 done:
    // zero-wait rounds of iris take a few ms each, and 6 of them once ended between two polls.
    const rounds = 20;
    const created = await platform.fetch('POST', '/tasks', {
      user_id: '1', use_case: 'iris', model_name: model.name, model_version: model.version, num_global_iterations: rounds,
      run_name: 'large-retry', experiment_name: 'Default', min_fit_clients: 3, round_timeout_s: 2, local_epochs: 20,
    });
    expect(created.status).toBe(200);
    const id = created.body.id;
    await platform.until(`task ${id} has completed 2 rounds`, async () => (await platform.fetch('GET', `/tasks/${id}`)).body.current_round >= 2, 60_000, 20);
    platform.signal('site-3', 'SIGSTOP');
    let retried: number;
    let previous: { sha256: string };
    try {
      await platform.until('a round run again', async () => logged().some((m) => /running round \d+ again/.test(m)), 60_000);
      retried = Number(/running round (\d+) again/.exec(logged().find((m) => /running round \d+ again/.test(m))!)![1]);
      // Read while the round stalls: the checkpoint its retries start from, that of the round before.
      [previous] = await platform.query<{ sha256: string }>(`SELECT sha256 FROM coordinator.checkpoints WHERE task_id = $1 AND round = $2`, [id, retried - 1]);
    } finally {
      platform.signal('site-3', 'SIGCONT');
    }
    const task = await platform.taskWhen(id, ['success', 'failed', 'cancelled'], 120_000);
    expect(task.reason).toBeNull();
    expect(task.status).toBe('success');

    // The attempt after the shortfall started from the checkpoint of the round before, read back from the database.
    expect(previous.sha256).toMatch(/^[0-9a-f]{64}$/);
    const readBack = logged().filter((m) => m.startsWith(`round ${retried}: global weights read back`));
    expect(readBack.length).toBeGreaterThanOrEqual(1);
    expect(readBack.every((m) => m === `round ${retried}: global weights read back from the checkpoint of round ${retried - 1} (sha256 ${previous.sha256})`)).toBe(true);

    // Every round completed once, the retried one with all three sites in the end; the last two rounds' checkpoints kept.
    const stored = await platform.query<{ round: number; status: string; participants: number }>(
      `SELECT round, status, participants FROM coordinator.rounds WHERE task_id = $1 ORDER BY round`, [id],
    );
    expect(stored).toEqual(Array.from({ length: rounds }, (_, i) => ({ round: i + 1, status: 'completed', participants: 3 })));
    const kept = await platform.query<{ round: number }>(`SELECT round FROM coordinator.checkpoints WHERE task_id = $1 ORDER BY round`, [id]);
    expect(kept.map((r) => r.round)).toEqual([rounds - 1, rounds]);
    const rows = await platform.fetch('GET', `/tasks/${id}/rounds`);
    expect(rows.body.map((r: { round: number }) => r.round)).toEqual(Array.from({ length: rounds }, (_, i) => i + 1));
    expect(task.metrics.eval_accuracy).toBeGreaterThan(0.8);
  }, 240_000);
});
