import { Platform } from '../support/platform';

/** What the chaos scenarios read back about a task: its rounds as the coordinator stored them. */
export interface StoredRound {
  round: number;
  status: string;
  participants: number;
  examples: number;
  duration_ms: number;
  finished_at: Date;
}

/** Publishes the iris model and returns a task starter for `platform`. */
export async function irisTasks(platform: Platform) {
  const model = JSON.parse(await platform.cli('models', 'publish', 'iris', '--json')) as { name: string; version: number };
  return async (settings: Record<string, unknown>): Promise<number> => {
    const created = await platform.fetch('POST', '/tasks', {
      user_id: '1', use_case: 'iris', model_name: model.name, model_version: model.version, run_name: 'chaos', experiment_name: 'Default', ...settings,
    });
    if (created.status !== 200) throw new Error(`POST /tasks answered ${created.status}: ${JSON.stringify(created.body)}`);
    return created.body.id as number;
  };
}

export async function roundReached(platform: Platform, id: number, round: number, timeoutMs = 60_000): Promise<void> {
  await platform.until(`task ${id} has completed ${round} round(s)`, async () => (await platform.fetch('GET', `/tasks/${id}`)).body.current_round >= round, timeoutMs);
}

export function storedRounds(platform: Platform, id: number): Promise<StoredRound[]> {
  return platform.query<StoredRound>(
    `SELECT round, status, participants, examples, duration_ms, finished_at FROM coordinator.rounds WHERE task_id = $1 ORDER BY round`,
    [id],
  );
}

/**
 * The invariants every scenario ends with: the task succeeded with every
 * round completed once, in order, as the gateway and the coordinator both
 * record it; each round's aggregate counts each site at most once and exactly
 * the sites whose update was received; one trained model was registered.
 */
export async function expectCleanSuccess(platform: Platform, id: number, rounds: number, timeoutMs: number): Promise<void> {
  const task = await platform.taskWhen(id, ['success', 'failed', 'cancelled'], timeoutMs);
  expect(task).toMatchObject({ status: 'success', current_round: rounds, reason: null, result_model_name: 'trained_iris' });
  const figures = (await platform.fetch('GET', `/tasks/${id}/rounds`)).body as { round: number; participants: number }[];
  const sequence = Array.from({ length: rounds }, (_, i) => i + 1);
  expect(figures.map((r) => r.round)).toEqual(sequence);
  const stored = await storedRounds(platform, id);
  expect(stored.map((r) => [r.round, r.status])).toEqual(sequence.map((r) => [r, 'completed']));
  const received = await platform.query<{ round: number; sites: number; examples: number }>(
    `SELECT round, count(*)::int AS sites, sum(examples)::int AS examples FROM coordinator.round_participants
     WHERE task_id = $1 AND phase = 'fit' AND status = 'received' GROUP BY round ORDER BY round`,
    [id],
  );
  expect(received.map((r) => [r.round, r.sites, r.examples])).toEqual(stored.map((r) => [r.round, r.participants, r.examples]));
  const checkpoints = await platform.query<{ round: number }>(`SELECT round FROM coordinator.checkpoints WHERE task_id = $1 ORDER BY round`, [id]);
  expect(checkpoints.map((c) => c.round)).toEqual(sequence);
  const versions = (await platform.fetch('GET', '/models/trained_iris/versions')).body.filter((v: any) => v.tags.task_id === String(id));
  expect(versions).toHaveLength(1);
}
