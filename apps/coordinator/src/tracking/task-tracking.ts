import { Logger } from '@nestjs/common';
import { RoundFigures, TaskSpec } from '@fl/contracts';
import { MetricPoint, ModelRegistry } from '@fl/registry';
import { TrackingRunsRepository } from './tracking-runs.repository';

/** What one worker contributed to a round. */
export interface NodeRoundFigures {
  node: string;
  fit?: { examples: number; loss: number };
  evaluate?: { examples: number; loss: number; accuracy: number };
}

export type RunEnd = 'FINISHED' | 'FAILED' | 'KILLED';

interface RoundLog {
  round: number;
  figures: RoundFigures;
  nodes: NodeRoundFigures[];
}

/**
 * How long a round's figures wait at most before they are logged: the rounds
 * completed meanwhile go in the same call (one statement for the built-in
 * registry, one log-batch per run for MLflow), so quick rounds do not cost a
 * database write or an HTTP call each.
 */
export const TRACKING_BATCH_MS = 1000;

/**
 * Logs a task to the experiment tracker as the predecessor did: a parent run
 * named after the task's run_name in its experiment_name, the task's settings
 * as params, the aggregated figures of each round with step = round, and one
 * child run per edge worker (run name = node name) with that worker's own
 * figures. The coordinator logs on the workers' behalf: sites often cannot
 * reach the tracker. Tracking never stops training: a failed call is logged
 * and the task goes on; and rounds do not wait for it: round figures are
 * logged in order in the background, batched (TRACKING_BATCH_MS), and
 * settle() and close() log what is queued and wait for it.
 */
export class TaskTracking {
  private readonly log: Logger;
  private parent: string | null = null;
  private children: Record<string, string> = {};
  private pending: Promise<void> = Promise.resolve();
  private queued: RoundLog[] = [];
  private batchTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly registry: ModelRegistry,
    private readonly runs: TrackingRunsRepository,
    private readonly spec: TaskSpec,
  ) {
    this.log = new Logger(`Task ${spec.task_id} tracking`);
  }

  /** The parent run, once open (the trained model's artifacts are logged under it). */
  get parentRunId(): string | undefined {
    return this.parent ?? undefined;
  }

  /** Opens the parent run, or finds the one a previous coordinator of this task opened. */
  async open(): Promise<void> {
    const known = await this.runs.get(this.spec.task_id);
    this.children = known.children;
    if (known.parent) {
      this.parent = known.parent;
      return;
    }
    await this.attempt('open the parent run', async () => {
      const { spec } = this;
      const { runId } = await this.registry.startRun({
        experimentName: spec.experiment_name,
        runName: spec.run_name,
        tags: { task_id: String(spec.task_id), use_case: spec.use_case, source_model: spec.model_name, source_version: String(spec.model_version) },
      });
      await this.runs.setParent(spec.task_id, runId);
      this.parent = runId;
      const s = spec.settings;
      await this.registry.logParams(runId, {
        task_id: String(spec.task_id),
        use_case: spec.use_case,
        model_name: spec.model_name,
        model_version: String(spec.model_version),
        num_global_iterations: String(spec.num_global_iterations),
        strategy: s.strategy,
        min_fit_clients: String(s.min_fit_clients),
        fraction_fit: String(s.fraction_fit),
        local_epochs: String(s.local_epochs),
        batch_size: String(s.batch_size),
        learning_rate: String(s.learning_rate),
        round_timeout_s: String(s.round_timeout_s),
        seed: String(s.seed),
      });
    });
  }

  /** Queues the round's figures for logging and returns at once. */
  round(round: number, figures: RoundFigures, nodes: NodeRoundFigures[]): void {
    this.queued.push({ round, figures, nodes });
    if (!this.batchTimer) {
      this.batchTimer = setTimeout(() => void this.flush(), TRACKING_BATCH_MS);
      this.batchTimer.unref();
    }
  }

  /** Logs the queued rounds (after those logged before them); resolves when they are. */
  private flush(): Promise<void> {
    clearTimeout(this.batchTimer);
    this.batchTimer = undefined;
    const batch = this.queued.splice(0);
    if (batch.length) this.pending = this.pending.then(() => this.logRounds(batch));
    return this.pending;
  }

  private async logRounds(batch: RoundLog[]): Promise<void> {
    if (!this.parent) return;
    const byRun = new Map<string, MetricPoint[]>([[this.parent, []]]);
    const add = (runId: string, points: MetricPoint[]) => (byRun.get(runId) ?? byRun.set(runId, []).get(runId)!).push(...points);
    for (const { round, figures, nodes } of batch) {
      add(this.parent, taskPoints(round, figures));
      for (const n of nodes) {
        const points = nodePoints(round, figures, n);
        if (points.length === 0) continue;
        try {
          add(await this.child(n.node), points);
        } catch (err) {
          this.log.warn(`could not log round ${round} of ${n.node} in the experiment tracker: ${(err as Error).message}`);
        }
      }
    }
    const rounds = batch.length === 1 ? `round ${batch[0].round}` : `rounds ${batch[0].round} to ${batch[batch.length - 1].round}`;
    // The task's and every site's figures of these rounds in one call (one statement for the built-in registry).
    await this.attempt(`log ${rounds}`, () => this.registry.logMetricsOfRuns([...byRun].map(([runId, metrics]) => ({ runId, metrics }))));
  }

  /** Logs every queued round and waits until they are. */
  settle(): Promise<void> {
    return this.flush();
  }

  /** Ends the parent run and every child run with the task's outcome. */
  async close(status: RunEnd): Promise<void> {
    await this.settle();
    for (const [node, runId] of Object.entries(this.children)) {
      await this.attempt(`end the run of ${node}`, () => this.registry.endRun(runId, status));
    }
    if (this.parent) await this.attempt('end the parent run', () => this.registry.endRun(this.parent!, status));
  }

  private async child(node: string): Promise<string> {
    const known = this.children[node];
    if (known) return known;
    const { runId } = await this.registry.startRun({
      experimentName: this.spec.experiment_name,
      runName: node,
      parentRunId: this.parent!,
      tags: { task_id: String(this.spec.task_id), node },
    });
    this.children[node] = runId;
    await this.runs.addChild(this.spec.task_id, node, runId);
    return runId;
  }

  private async attempt(what: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.log.warn(`could not ${what} in the experiment tracker: ${(err as Error).message}`);
    }
  }
}

/** A metric point of a round: step = round, at the round's end. */
function pointOf(round: number, figures: RoundFigures): (key: string, value: number) => MetricPoint {
  const at = new Date(figures.finished_at);
  return (key, value) => ({ key, value, step: round, timestamp: at });
}

/** The task's figures of a round, for its parent run. */
function taskPoints(round: number, figures: RoundFigures): MetricPoint[] {
  const point = pointOf(round, figures);
  return [
    point('train_loss', figures.train_loss),
    point('eval_loss', figures.eval_loss),
    point('eval_accuracy', figures.eval_accuracy),
    point('participants', figures.participants),
    point('examples', figures.examples),
    point('round_duration_ms', figures.duration_ms),
    // Present only for tasks that have them: privacy spent, and the operator's held-out evaluation.
    ...(['epsilon', 'server_eval_loss', 'server_eval_accuracy'] as const).filter((k) => figures[k] !== undefined).map((k) => point(k, figures[k]!)),
  ];
}

/** One site's own figures of a round, for its child run. */
function nodePoints(round: number, figures: RoundFigures, n: NodeRoundFigures): MetricPoint[] {
  const point = pointOf(round, figures);
  const points: MetricPoint[] = [];
  if (n.fit) points.push(point('train_loss', n.fit.loss), point('train_examples', n.fit.examples));
  if (n.evaluate) points.push(point('eval_loss', n.evaluate.loss), point('eval_accuracy', n.evaluate.accuracy), point('eval_examples', n.evaluate.examples));
  return points;
}
