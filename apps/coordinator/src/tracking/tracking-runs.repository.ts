import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { DATA_SOURCE } from '@fl/runtime';

export interface TrackingRuns {
  parent: string | null;
  children: Record<string, string>;
}

/** Which tracker runs a task logs into, kept with the task so a resumed task continues them. */
@Injectable()
export class TrackingRunsRepository {
  constructor(@Inject(DATA_SOURCE) private readonly db: DataSource) {}

  async get(taskId: number): Promise<TrackingRuns> {
    const rows: { tracking_run_id: string | null; tracking_child_runs: Record<string, string> }[] = await this.db.query(
      `SELECT tracking_run_id, tracking_child_runs FROM coordinator.task_runs WHERE task_id = $1`,
      [taskId],
    );
    return { parent: rows[0]?.tracking_run_id ?? null, children: rows[0]?.tracking_child_runs ?? {} };
  }

  async setParent(taskId: number, runId: string): Promise<void> {
    await this.db.query(`UPDATE coordinator.task_runs SET tracking_run_id = $2, updated_at = now() WHERE task_id = $1`, [taskId, runId]);
  }

  async addChild(taskId: number, node: string, runId: string): Promise<void> {
    await this.db.query(
      `UPDATE coordinator.task_runs SET tracking_child_runs = tracking_child_runs || jsonb_build_object($2::text, $3::text), updated_at = now() WHERE task_id = $1`,
      [taskId, node, runId],
    );
  }
}
