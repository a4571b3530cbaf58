import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { RoundFigures } from '@fl/contracts';
import { DATA_SOURCE } from '@fl/runtime';

export type Phase = 'fit' | 'evaluate';
export type ParticipantStatus = 'selected' | 'received' | 'rejected' | 'missing' | 'failed';

/** The coordinator's record of rounds: figures, who took part how, and a checkpoint per round. */
@Injectable()
export class RoundsRepository {
  constructor(@Inject(DATA_SOURCE) private readonly db: DataSource) {}

  async start(taskId: number, round: number, participants: number): Promise<void> {
    await this.db.query(
      `INSERT INTO coordinator.rounds (task_id, round, status, participants, examples, started_at)
       VALUES ($1, $2, 'running', $3, 0, now())
       ON CONFLICT (task_id, round) DO UPDATE SET status = 'running', participants = EXCLUDED.participants, started_at = now(), finished_at = NULL`,
      [taskId, round, participants],
    );
  }

  async participant(
    taskId: number,
    round: number,
    node: string,
    phase: Phase,
    status: ParticipantStatus,
    fields: { examples?: number; loss?: number; accuracy?: number; reason?: string } = {},
  ): Promise<void> {
    await this.db.query(
      `INSERT INTO coordinator.round_participants (task_id, round, node_name, phase, status, examples, loss, accuracy, reason, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now())
       ON CONFLICT (task_id, round, node_name, phase) DO UPDATE SET status = EXCLUDED.status, examples = EXCLUDED.examples,
         loss = EXCLUDED.loss, accuracy = EXCLUDED.accuracy, reason = EXCLUDED.reason, updated_at = now()`,
      [taskId, round, node, phase, status, fields.examples ?? null, fields.loss ?? null, fields.accuracy ?? null, fields.reason ?? null],
    );
  }

  async fail(taskId: number, round: number): Promise<void> {
    await this.db.query(`UPDATE coordinator.rounds SET status = 'failed', finished_at = now() WHERE task_id = $1 AND round = $2`, [taskId, round]);
  }

  /** Stores a round's figures and the checkpoint of the new global weights together, before the next round starts. */
  async complete(taskId: number, round: number, f: RoundFigures, checkpoint: Buffer, sha256: string): Promise<void> {
    const qr = this.db.createQueryRunner();
    await qr.connect();
    try {
      await qr.startTransaction();
      await qr.query(
        `UPDATE coordinator.rounds SET status = 'completed', participants = $3, examples = $4, train_loss = $5, eval_loss = $6,
           eval_accuracy = $7, eval_examples = $8, finished_at = $9, duration_ms = $10
         WHERE task_id = $1 AND round = $2`,
        [taskId, round, f.participants, f.examples, f.train_loss, f.eval_loss, f.eval_accuracy, f.eval_examples, f.finished_at, f.duration_ms],
      );
      await qr.query(
        `INSERT INTO coordinator.checkpoints (task_id, round, weights, sha256, created_at) VALUES ($1, $2, $3, $4, now())
         ON CONFLICT (task_id, round) DO UPDATE SET weights = EXCLUDED.weights, sha256 = EXCLUDED.sha256, created_at = now()`,
        [taskId, round, checkpoint, sha256],
      );
      await qr.commitTransaction();
    } catch (err) {
      if (qr.isTransactionActive) await qr.rollbackTransaction();
      throw err;
    } finally {
      await qr.release();
    }
  }

  async latestCheckpoint(taskId: number): Promise<{ round: number; weights: Buffer; sha256: string } | null> {
    const rows: { round: number; weights: Buffer; sha256: string }[] = await this.db.query(
      `SELECT c.round, c.weights, c.sha256 FROM coordinator.checkpoints c
       JOIN coordinator.rounds r ON r.task_id = c.task_id AND r.round = c.round AND r.status = 'completed'
       WHERE c.task_id = $1 ORDER BY c.round DESC LIMIT 1`,
      [taskId],
    );
    return rows[0] ?? null;
  }

  async figures(taskId: number): Promise<{ round: number; train_loss: number; eval_loss: number; eval_accuracy: number; eval_examples: number }[]> {
    return this.db.query(
      `SELECT round, train_loss, eval_loss, eval_accuracy, eval_examples FROM coordinator.rounds WHERE task_id = $1 AND status = 'completed' ORDER BY round`,
      [taskId],
    );
  }
}
