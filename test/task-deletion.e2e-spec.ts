import { Platform } from './support/platform';

/**
 * DELETE /tasks on the deployed apps (a gateway, two coordinators, two edge
 * workers on real RabbitMQ and PostgreSQL): the coordinators' records of the
 * deleted tasks (lease rows, rounds, participants, checkpoints) are purged
 * too, a running task only once its runner has stopped, and a task submitted
 * afterwards runs as ever.
 */
describe('deleting tasks purges the coordinators\' records of them', () => {
  const platform = new Platform();
  const COORDINATORS = ['coordinator-1', 'coordinator-2'];
  const TABLES = ['task_runs', 'rounds', 'round_participants', 'checkpoints', 'checkpoint_chunks'];

  beforeAll(async () => {
    // A lease far longer than the test keeps a frozen coordinator's task its own (see the running task's test).
    await platform.start({ sites: 2, coordinators: 2, coordinatorEnv: { WORKER_WAIT_S: '2', LEASE_TTL_S: '300' } });
    await platform.cli('models', 'publish', 'iris');
  }, 120_000);

  afterAll(() => platform.stop(), 60_000);

  const submit = async (runName: string, rounds: number, extra: Record<string, unknown> = {}): Promise<number> => {
    const res = await platform.fetch('POST', '/tasks', {
      user_id: 'u', use_case: 'iris', model_name: 'iris', model_version: 1, num_global_iterations: rounds, run_name: runName, experiment_name: 'Default', ...extra,
    });
    expect(res.status).toBe(200);
    return res.body.id;
  };

  /** Rows of the task in each coordinator table, the empty ones left out. */
  async function coordinatorRows(taskId: number): Promise<Record<string, number>> {
    const rows: Record<string, number> = {};
    for (const table of TABLES) {
      const [{ n }] = await platform.query<{ n: string }>(`SELECT count(*) AS n FROM coordinator.${table} WHERE task_id = $1`, [taskId]);
      if (Number(n) > 0) rows[table] = Number(n);
    }
    return rows;
  }

  const purged = (taskId: number) =>
    platform.until(`the coordinators hold no row of task ${taskId}`, async () => Object.keys(await coordinatorRows(taskId)).length === 0, 30_000);

  /** Lines of every coordinator's log saying `text`. */
  const logged = (text: string) => COORDINATORS.flatMap((c) => platform.jsonLogLines(c).map((l) => String(l.msg))).filter((m) => m.includes(text));

  const deleted: number[] = [];

  it('purges every row of a finished task, once, and keeps only its id and when it went', async () => {
    const id = await submit('finished', 2);
    expect((await platform.taskWhen(id)).status).toBe('success');
    expect(await coordinatorRows(id)).toEqual({ task_runs: 1, rounds: 2, round_participants: 8, checkpoints: 2 });

    const res = await platform.fetch('DELETE', '/tasks');
    expect(res).toMatchObject({ status: 200, body: { deleted: 1, cancelled: 0 } });
    deleted.push(id);
    await purged(id);
    const [mark] = await platform.query<{ purged_at: Date | null }>(`SELECT purged_at FROM coordinator.deleted_tasks WHERE task_id = $1`, [id]);
    expect(mark.purged_at).toBeInstanceOf(Date);
    // Both coordinators got the message; one of them deleted the rows.
    await platform.until('both coordinators have the deletion', async () => logged(`deleted at the gateway, ids ${id} to ${id}`).length === 2);
    expect(logged(`task ${id} purged:`)).toEqual([`task ${id} purged: 0 checkpoint_chunks, 2 checkpoints, 8 round_participants, 2 rounds, 1 task_runs`]);
    expect(await platform.query(`SELECT task_id FROM gateway.task_deletion_outbox`)).toEqual([]);
  });

  it('cancels a running task first and purges it once its runner has stopped, not before', async () => {
    const id = await submit('running', 10_000, { round_timeout_s: 10 });
    await platform.until(`task ${id} has completed a round`, async () => (await platform.fetch('GET', `/tasks/${id}`)).body.current_round >= 1);
    const [{ owner }] = await platform.query<{ owner: string }>(`SELECT owner FROM coordinator.task_runs WHERE task_id = $1`, [id]);
    const runner = owner.replace('e2e-', '');
    const other = COORDINATORS.find((c) => c !== runner)!;

    // Its runner frozen, the task cannot stop: the other coordinator gets the deletion and leaves the task alone.
    platform.signal(runner, 'SIGSTOP');
    try {
      const res = await platform.fetch('DELETE', '/tasks');
      expect(res).toMatchObject({ status: 200, body: { deleted: 1, cancelled: 1 } });
      deleted.push(id);
      await platform.until(`${other} has declined to purge task ${id}`, async () =>
        platform.jsonLogLines(other).some((l) => l.msg === `task ${id} was deleted but still runs: purged once its runner has stopped`),
      );
      expect(await coordinatorRows(id)).toMatchObject({ task_runs: 1, rounds: expect.any(Number), checkpoints: expect.any(Number) });
    } finally {
      platform.signal(runner, 'SIGCONT');
    }

    await purged(id);
    // It stopped as cancelled (its tracked runs killed, the lease row finished) before its rows went.
    const tracked = await platform.query<{ status: string }>(`SELECT status FROM registry.runs WHERE tags->>'task_id' = $1`, [String(id)]);
    expect(new Set(tracked.map((r) => r.status))).toEqual(new Set(['KILLED']));
    expect(logged(`task ${id} cancelled`).length).toBeGreaterThan(0);
    expect(logged(`task ${id} purged:`)).toHaveLength(1);
  });

  it('runs a task submitted afterwards, and never brings a deleted one back', async () => {
    const id = await submit('afterwards', 2);
    expect((await platform.taskWhen(id)).status).toBe('success');
    expect(await coordinatorRows(id)).toEqual({ task_runs: 1, rounds: 2, round_participants: 8, checkpoints: 2 });
    // A whole task later, whatever the stopped runner or a late message might have written: nothing of the deleted ones.
    for (const d of deleted) expect([d, await coordinatorRows(d)]).toEqual([d, {}]);
    expect(await platform.query(`SELECT task_id FROM coordinator.deleted_tasks WHERE purged_at IS NULL`)).toEqual([]);
  });
});
