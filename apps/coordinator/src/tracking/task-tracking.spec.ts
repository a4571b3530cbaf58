import { Logger } from '@nestjs/common';
import { RoundFigures, TaskSpec } from '@fl/contracts';
import { MetricPoint, ModelRegistry } from '@fl/registry';
import { TaskTracking, TRACKING_BATCH_MS } from './task-tracking';
import { TrackingRuns, TrackingRunsRepository } from './tracking-runs.repository';

type Batch = { runId: string; metrics: MetricPoint[] }[];

/** The tracker calls the task's tracking makes; runs are numbered as they start. */
function fakeRegistry(failFirst = false) {
  const batches: Batch[] = [];
  const started: string[] = [];
  let calls = 0;
  const registry = {
    startRun: async (opts: { runName: string }) => {
      started.push(opts.runName);
      return { runId: `run-${started.length}` };
    },
    logParams: async () => undefined,
    logMetricsOfRuns: async (entries: Batch) => {
      if (failFirst && calls++ === 0) throw new Error('tracker unreachable');
      batches.push(entries);
    },
    endRun: async () => undefined,
  } as unknown as ModelRegistry;
  return { registry, batches, started };
}

function fakeRuns(): TrackingRunsRepository {
  const runs: TrackingRuns = { parent: null, children: {} };
  return {
    get: async () => ({ parent: runs.parent, children: { ...runs.children } }),
    setParent: async (_: number, id: string) => void (runs.parent = id),
    addChild: async (_: number, node: string, id: string) => void (runs.children[node] = id),
  } as unknown as TrackingRunsRepository;
}

const spec = {
  task_id: 7,
  use_case: 'iris',
  model_name: 'm',
  model_version: 1,
  num_global_iterations: 3,
  run_name: 'r',
  experiment_name: 'e',
  settings: { strategy: 'FedAvg', min_fit_clients: 2, fraction_fit: 1, local_epochs: 1, batch_size: 8, learning_rate: 0.1, round_timeout_s: 60, seed: 1 },
} as unknown as TaskSpec;

function figures(round: number): RoundFigures {
  return {
    participants: 2,
    examples: 100,
    train_loss: 1 / round,
    eval_loss: 2 / round,
    eval_accuracy: round / 10,
    eval_examples: 30,
    started_at: new Date(0).toISOString(),
    finished_at: new Date(round * 1000).toISOString(),
    duration_ms: 10,
  };
}

const nodes = (round: number) => [
  { node: 'site-a', fit: { examples: 50, loss: 1 / round }, evaluate: { examples: 15, loss: 2 / round, accuracy: 0.5 } },
  { node: 'site-b', fit: { examples: 50, loss: 1.5 / round } },
];

const steps = (b: Batch, runId: string, key: string) => b.filter((e) => e.runId === runId).flatMap((e) => e.metrics.filter((m) => m.key === key).map((m) => m.step));

describe('TaskTracking', () => {
  afterEach(() => jest.useRealTimers());

  it('logs the rounds queued meanwhile in one call, each site in its own child run, started once', async () => {
    const { registry, batches, started } = fakeRegistry();
    const tracking = new TaskTracking(registry, fakeRuns(), spec);
    await tracking.open();
    for (const r of [1, 2, 3]) tracking.round(r, figures(r), nodes(r));
    expect(batches).toHaveLength(0); // queued, not logged yet
    await tracking.settle();

    expect(batches).toHaveLength(1);
    const [batch] = batches;
    expect(started).toEqual(['r', 'site-a', 'site-b']);
    expect(steps(batch, 'run-1', 'eval_accuracy')).toEqual([1, 2, 3]);
    expect(steps(batch, 'run-2', 'eval_accuracy')).toEqual([1, 2, 3]); // site-a
    expect(steps(batch, 'run-3', 'train_loss')).toEqual([1, 2, 3]); // site-b
    expect(steps(batch, 'run-3', 'eval_loss')).toEqual([]); // site-b did not evaluate
    const accuracy = batch.find((e) => e.runId === 'run-1')!.metrics.find((m) => m.key === 'eval_accuracy' && m.step === 2)!;
    expect(accuracy.value).toBeCloseTo(0.2);
    expect(accuracy.timestamp).toEqual(new Date(2000));
  });

  it('logs a round by itself once the batch time has passed, without a settle', async () => {
    jest.useFakeTimers();
    const { registry, batches } = fakeRegistry();
    const tracking = new TaskTracking(registry, fakeRuns(), spec);
    await tracking.open();
    tracking.round(1, figures(1), nodes(1));
    await jest.advanceTimersByTimeAsync(TRACKING_BATCH_MS - 1);
    expect(batches).toHaveLength(0);
    await jest.advanceTimersByTimeAsync(1);
    await tracking.settle();
    expect(batches).toHaveLength(1);
    expect(steps(batches[0], 'run-1', 'train_loss')).toEqual([1]);

    tracking.round(2, figures(2), nodes(2));
    await tracking.settle();
    expect(batches.map((b) => steps(b, 'run-1', 'train_loss'))).toEqual([[1], [2]]);
  });

  it('a failed call is logged and later rounds are still logged', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const { registry, batches } = fakeRegistry(true);
    const tracking = new TaskTracking(registry, fakeRuns(), spec);
    await tracking.open();
    tracking.round(1, figures(1), nodes(1));
    tracking.round(2, figures(2), nodes(2));
    await tracking.settle();
    expect(batches).toHaveLength(0);
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('could not log rounds 1 to 2 in the experiment tracker: tracker unreachable'));

    tracking.round(3, figures(3), nodes(3));
    await tracking.close('FINISHED');
    expect(batches.map((b) => steps(b, 'run-1', 'train_loss'))).toEqual([[3]]);
    warn.mockRestore();
  });
});
