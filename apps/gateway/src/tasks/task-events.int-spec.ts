import { DataSource } from 'typeorm';
import { DEFAULT_FL_SETTINGS, RoundFigures } from '@fl/contracts';
import { createDataSource, runMigrations } from '@fl/persistence';
import { createTestDatabase } from '../../../../libs/persistence/src/testing';
import { TaskEventsController } from './task-events.controller';
import { NewTask, TasksRepository } from './tasks.repository';

/** On a real PostgreSQL: the gateway stores round events, one round to an event or several, each round once. */
describe('TaskEventsController: round events (PostgreSQL)', () => {
  let db: { url: string; drop(): Promise<void> };
  let ds: DataSource;
  let tasks: TasksRepository;
  let events: TaskEventsController;

  const figures = (round: number): RoundFigures => ({
    participants: 2, examples: 80, train_loss: 1 / round, eval_loss: 0.5, eval_accuracy: 0.75, eval_examples: 30,
    started_at: new Date(round * 1000).toISOString(), finished_at: new Date(round * 1000 + 5).toISOString(), duration_ms: 5,
  });
  const envelope = (taskId: number, round: number) => ({ task_id: taskId, round, sender: 'c1', num_rounds: 10 });
  const one = (taskId: number, round: number) => ({ ...envelope(taskId, round), figures: figures(round) });
  const several = (taskId: number, rounds: number[]) => ({ ...envelope(taskId, rounds[rounds.length - 1]), rounds: rounds.map((round) => ({ round, figures: figures(round) })) });

  async function newTask(): Promise<number> {
    const task = await tasks.insert(
      { user_id: 'u1', use_case: 'iris', model_name: 'iris', model_version: 1, num_global_iterations: 10, run_name: 'r', experiment_name: 'e', ...DEFAULT_FL_SETTINGS, strategy_params: {} } as NewTask,
      'corr-1',
    );
    return task.id;
  }
  const storedRounds = async (taskId: number) => (await tasks.rounds(taskId)).map((r) => r.round);
  const progress = async (taskId: number) => (await tasks.find(taskId))?.current_round;

  beforeAll(async () => {
    db = await createTestDatabase('fl_task_events');
    ds = createDataSource({ url: db.url, poolSize: 2 });
    await ds.initialize();
    await runMigrations(ds);
    tasks = new TasksRepository(ds);
    events = new TaskEventsController(tasks);
  });

  afterAll(async () => {
    await ds.destroy();
    await db.drop();
  });

  it('stores every round of a rounds.completed event with its figures, in one go, and advances the task to the last', async () => {
    const id = await newTask();
    await events.roundCompleted(one(id, 1));
    await events.roundsCompleted(several(id, [2, 3, 4]));
    expect(await storedRounds(id)).toEqual([1, 2, 3, 4]);
    expect(await progress(id)).toBe(4);
    const listed = await tasks.rounds(id);
    expect(listed[2]).toEqual({ round: 3, ...figures(3) });
  });

  it('stores each round once: rounds sent again (a resumed task sends every completed round) change nothing', async () => {
    const id = await newTask();
    await events.roundsCompleted(several(id, [1, 2]));
    const before = await tasks.rounds(id);
    // Sent again with other figures, as a resumed task's events could be: the first ones stay.
    await events.roundsCompleted({ ...several(id, [1, 2, 3]), rounds: [1, 2, 3].map((round) => ({ round, figures: { ...figures(round), train_loss: 99 } })) });
    await events.roundCompleted(one(id, 2));
    const after = await tasks.rounds(id);
    expect(after.map((r) => r.round)).toEqual([1, 2, 3]);
    expect(after.slice(0, 2)).toEqual(before);
    expect(after[2].train_loss).toBe(99);
    expect(await progress(id)).toBe(3);
  });

  it('never moves a task back: an older batch after a newer round leaves current_round at the newer', async () => {
    const id = await newTask();
    await events.roundCompleted(one(id, 5));
    await events.roundsCompleted(several(id, [3, 4]));
    expect(await storedRounds(id)).toEqual([3, 4, 5]);
    expect(await progress(id)).toBe(5);
  });

  it('ignores the rounds of a task it does not have, storing nothing', async () => {
    await events.roundsCompleted(several(987_654, [1, 2]));
    const [{ n }] = await ds.query(`SELECT count(*)::int AS n FROM gateway.task_events WHERE task_id = 987654`);
    expect(n).toBe(0);
  });

  it('refuses a rounds.completed event that breaks its contract, naming what is wrong, and stores nothing', async () => {
    const id = await newTask();
    await expect(events.roundsCompleted({ ...envelope(id, 1), rounds: [] })).rejects.toThrow(/rounds/);
    await expect(events.roundsCompleted({ ...several(id, [1, 2]), rounds: [{ round: 1, figures: figures(1) }, { round: 0, figures: figures(2) }] })).rejects.toThrow(/round/);
    await expect(events.roundsCompleted({ ...several(id, [1]), rounds: [{ round: 1, figures: { ...figures(1), participants: -1 } }] })).rejects.toThrow(/participants/);
    expect(await storedRounds(id)).toEqual([]);
    expect(await progress(id)).toBe(0);
  });
});
