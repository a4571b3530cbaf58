import { createHash } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { CompletedRound, RoundFigures } from '@fl/contracts';
import { ComputedStandardization, sha256Hex } from '@fl/models';
import { DATA_SOURCE } from '@fl/runtime';

export type Phase = 'fit' | 'evaluate';
export type ParticipantStatus = 'selected' | 'received' | 'rejected' | 'missing' | 'failed';

export interface ParticipantRecord {
  node: string;
  status: ParticipantStatus;
  examples?: number;
  loss?: number;
  accuracy?: number;
  reason?: string;
}

/** How the workers took part in a round, per phase. */
export type PhaseRecords = Partial<Record<Phase, ParticipantRecord[]>>;

/** Participant records as the arrays `coordinator.record_participants` takes: one per column, in this order. */
function participantArrays(records: PhaseRecords): unknown[] {
  const columns: unknown[][] = [[], [], [], [], [], [], []];
  for (const phase of ['fit', 'evaluate'] as const) {
    for (const r of records[phase] ?? []) {
      const row = [r.node, phase, r.status, r.examples ?? null, r.loss ?? null, r.accuracy ?? null, r.reason ?? null];
      row.forEach((v, i) => columns[i].push(v));
    }
  }
  return columns;
}

/** The arguments of `coordinator.record_participants` after the task and the round, from `$first` on. */
function participantParams(first: number): string {
  const types = ['text[]', 'text[]', 'text[]', 'int[]', 'float8[]', 'float8[]', 'text[]'];
  return types.map((t, i) => `$${first + i}::${t}`).join(', ');
}

/**
 * 16 MiB: far below PostgreSQL's 1 GB field limit; node-postgres copies each into the message that
 * sends it and reads each back as a hex string of twice its size, so this also bounds what a
 * checkpoint adds in memory.
 */
export const CHECKPOINT_PIECE_BYTES = 16 * 1024 * 1024;

export interface Checkpoint {
  round: number;
  weights: Buffer;
  sha256: string;
  /** The strategy's server-side state after the round; null when it has none. */
  strategy_state: Buffer | null;
}

/** The coordinator's record of rounds: figures, who took part how, and a checkpoint per round. */
@Injectable()
export class RoundsRepository {
  /** Weights above this size are stored in pieces of this size (coordinator.checkpoint_chunks). */
  pieceBytes = CHECKPOINT_PIECE_BYTES;

  constructor(@Inject(DATA_SOURCE) private readonly db: DataSource) {}

  /**
   * Marks the round running since `startedAt` and records who was asked to fit,
   * in one statement (one commit: the round's only write before its end). A
   * round whose fit went out with the last round's evaluation is started by
   * that round's `complete` instead (`next`).
   */
  async start(taskId: number, round: number, selected: string[], startedAt: Date | string = new Date()): Promise<void> {
    await this.db.query(`SELECT coordinator.start_round($1::int, $2::int, $3::text[], $4::timestamptz)`, [taskId, round, selected, startedAt]);
  }

  /** Records how each worker took part in a round, both phases in one statement. */
  async participants(taskId: number, round: number, records: PhaseRecords): Promise<void> {
    if (!records.fit?.length && !records.evaluate?.length) return;
    await this.db.query(`SELECT coordinator.record_participants($1::int, $2::int, ${participantParams(3)})`, [taskId, round, ...participantArrays(records)]);
  }

  /** Marks the round failed, with how each worker took part, in one statement. */
  async fail(taskId: number, round: number, records: PhaseRecords = {}): Promise<void> {
    await this.db.query(
      `WITH failed AS (UPDATE coordinator.rounds SET status = 'failed', finished_at = now() WHERE task_id = $1 AND round = $2)
       SELECT coordinator.record_participants($1::int, $2::int, ${participantParams(3)})`,
      [taskId, round, ...participantArrays(records)],
    );
  }

  /**
   * Stores a round's figures, how each worker took part, the checkpoint of the
   * new global weights and the task's progress together, before the next
   * round starts: one statement (one commit) unless the weights go in pieces.
   * Checkpoints of rounds older than the last `keep` (this one included) are
   * deleted with it; `keep` 0 keeps them all. With `next`, the next round's
   * start is written in the same statement (see `start`).
   */
  async complete(
    taskId: number,
    round: number,
    f: RoundFigures,
    checkpoint: Buffer,
    sha256: string,
    opts: {
      strategyState?: Buffer | Buffer[] | null;
      records?: PhaseRecords;
      keep?: number;
      next?: { round: number; selected: string[]; startedAt: Date | string };
    } = {},
  ): Promise<void> {
    const { records = {}, keep = 0, next } = opts;
    if (!Number.isInteger(keep) || keep < 0) throw new RangeError(`checkpoints to keep must be a whole number >= 0, got ${keep}`);
    // Large weights go in pieces: a bytea field holds at most 1 GB, and node-postgres reads a bytea back as a hex string of twice its size.
    const pieces = checkpoint.length > this.pieceBytes ? Math.ceil(checkpoint.length / this.pieceBytes) : 0;
    // So does a large strategy state (given as segments to be written one after the other: a large model's is never copied whole), after the weights' pieces.
    const stateSegments = opts.strategyState == null ? [] : Array.isArray(opts.strategyState) ? opts.strategyState : [opts.strategyState];
    const stateBytes = stateSegments.reduce((n, b) => n + b.length, 0);
    const statePieces = stateBytes > this.pieceBytes ? Math.ceil(stateBytes / this.pieceBytes) : 0;
    const strategyState = opts.strategyState == null || statePieces ? null : Buffer.concat(stateSegments);
    // A state in pieces is hashed as its pieces are written, and its hash set after them (below).
    const values = [
      taskId, round, f.participants, f.examples, f.train_loss, f.eval_loss, f.eval_accuracy, f.eval_examples, f.finished_at, f.duration_ms, JSON.stringify(f),
      pieces ? Buffer.alloc(0) : checkpoint, sha256, pieces, strategyState, statePieces, strategyState ? sha256Hex(strategyState) : null, keep,
      ...participantArrays(records),
      next?.round ?? null, next?.selected ?? null, next?.startedAt ?? null,
    ];
    // Older rounds' checkpoints beyond the last `keep` go with it: a task resumes from its last one, and each can be the model's size.
    const statement = `SELECT coordinator.complete_round($1::int, $2::int, $3::int, $4::int, $5::float8, $6::float8, $7::float8, $8::int,
       $9::timestamptz, $10::int, $11::jsonb, $12::bytea, $13::text, $14::int, $15::bytea, $16::int, $17::text, $18::int, ${participantParams(19)},
       $26::int, $27::text[], $28::timestamptz)`;
    if (pieces === 0 && statePieces === 0) {
      await this.db.query(statement, values);
      return;
    }
    const qr = this.db.createQueryRunner();
    await qr.connect();
    try {
      await qr.startTransaction();
      await qr.query(statement, values);
      const insert = `INSERT INTO coordinator.checkpoint_chunks (task_id, round, index, data) VALUES ($1, $2, $3, $4)`;
      for (let index = 0; index < pieces; index++) {
        const data = checkpoint.subarray(index * this.pieceBytes, (index + 1) * this.pieceBytes);
        await qr.query(insert, [taskId, round, index, data]);
      }
      if (statePieces) {
        let index = pieces;
        const hash = createHash('sha256');
        for (const data of cut(stateSegments, this.pieceBytes)) {
          hash.update(data);
          await qr.query(insert, [taskId, round, index++, data]);
        }
        await qr.query(`UPDATE coordinator.checkpoints SET state_sha256 = $3 WHERE task_id = $1 AND round = $2`, [taskId, round, hash.digest('hex')]);
      }
      await qr.commitTransaction();
    } catch (err) {
      if (qr.isTransactionActive) await qr.rollbackTransaction();
      throw err;
    } finally {
      await qr.release();
    }
  }

  /**
   * The checkpoint of the last completed round; weights stored in pieces are
   * put back together (once), a state stored in pieces into one buffer of its
   * own, and both are checked against their SHA-256 (a state stored before
   * states had one is not). With `weights: false`, only the round and the
   * state (the weights come back empty).
   */
  async latestCheckpoint(taskId: number, what: { weights?: boolean } = {}): Promise<Checkpoint | null> {
    const withWeights = what.weights ?? true;
    const rows: (Checkpoint & { pieces: number; state_pieces: number; state_sha256: string | null; bytes: string | null; state_bytes: string | null })[] = await this.db.query(
      `SELECT c.round, CASE WHEN c.pieces = 0 AND $2 THEN c.weights END AS weights, c.sha256, c.strategy_state, c.pieces, c.state_pieces, c.state_sha256,
         (SELECT sum(length(k.data)) FROM coordinator.checkpoint_chunks k WHERE k.task_id = c.task_id AND k.round = c.round AND k.index < c.pieces) AS bytes,
         (SELECT sum(length(k.data)) FROM coordinator.checkpoint_chunks k WHERE k.task_id = c.task_id AND k.round = c.round AND k.index >= c.pieces) AS state_bytes
       FROM coordinator.checkpoints c
       JOIN coordinator.rounds r ON r.task_id = c.task_id AND r.round = c.round AND r.status = 'completed'
       WHERE c.task_id = $1 ORDER BY c.round DESC LIMIT 1`,
      [taskId, withWeights],
    );
    const row = rows[0];
    if (!row) return null;
    const { pieces, state_pieces: statePieces, state_sha256: stateSha, bytes, state_bytes: stateBytes, ...checkpoint } = row;
    const where = `checkpoint of task ${taskId} round ${row.round}`;
    if (statePieces > 0) checkpoint.strategy_state = await this.readPieces(taskId, row.round, 'strategy state', pieces, statePieces, Number(stateBytes ?? 0), stateSha);
    else if (checkpoint.strategy_state && stateSha) checkHash(checkpoint.strategy_state, stateSha, `${where}: its strategy state has`);
    if (!withWeights) return { ...checkpoint, weights: Buffer.alloc(0) };
    if (pieces === 0) {
      checkHash(checkpoint.weights, row.sha256, `${where}: its weights have`);
      return checkpoint;
    }
    return { ...checkpoint, weights: await this.readPieces(taskId, row.round, 'weights', 0, pieces, Number(bytes ?? 0), row.sha256) };
  }

  /**
   * Pieces `first` .. `first + count - 1` of a checkpoint (its weights' or its strategy state's), put back together into
   * one buffer of `bytes` (8-byte aligned: its own memory) and checked against `sha256` where one is stored.
   */
  private async readPieces(taskId: number, round: number, what: string, first: number, count: number, bytes: number, sha256: string | null): Promise<Buffer> {
    const where = `checkpoint of task ${taskId} round ${round}`;
    const out = Buffer.allocUnsafeSlow(bytes);
    const hash = createHash('sha256');
    let offset = 0;
    for (let index = first; index < first + count; index++) {
      const [piece]: { data: Buffer }[] = await this.db.query(`SELECT data FROM coordinator.checkpoint_chunks WHERE task_id = $1 AND round = $2 AND index = $3`, [taskId, round, index]);
      if (!piece || offset + piece.data.length > out.length) throw new Error(`${where}: ${what} piece ${index - first} of ${count} is missing`);
      piece.data.copy(out, offset);
      hash.update(piece.data);
      offset += piece.data.length;
    }
    if (offset !== out.length) throw new Error(`${where}: its ${count} ${what} pieces hold ${offset} bytes, not ${out.length}`);
    const sha = hash.digest('hex');
    if (sha256 && sha !== sha256) throw new Error(`${where}: its ${count} ${what} pieces have SHA-256 ${sha}, stored as ${sha256}`);
    return out;
  }

  /**
   * A task's completed rounds, oldest first, with their figures as their events
   * carried them; for rounds stored before they were kept whole, the main
   * figures from the round's columns.
   */
  async completedRounds(taskId: number): Promise<CompletedRound[]> {
    const rows: (Omit<RoundFigures, 'started_at' | 'finished_at'> & { round: number; started_at: Date; finished_at: Date; figures: RoundFigures | null })[] = await this.db.query(
      `SELECT round, participants, examples, train_loss, eval_loss, eval_accuracy, eval_examples, started_at, finished_at, duration_ms, figures
       FROM coordinator.rounds WHERE task_id = $1 AND status = 'completed' ORDER BY round`,
      [taskId],
    );
    return rows.map(({ round, figures, started_at, finished_at, ...main }) => ({
      round,
      figures: figures ?? { ...main, started_at: started_at.toISOString(), finished_at: finished_at.toISOString() },
    }));
  }

  /** The standardisation the task computed before round 1, if it did. */
  async standardization(taskId: number): Promise<ComputedStandardization | null> {
    const rows: { standardization: ComputedStandardization | null }[] = await this.db.query(`SELECT standardization FROM coordinator.task_runs WHERE task_id = $1`, [taskId]);
    return rows[0]?.standardization ?? null;
  }

  async saveStandardization(taskId: number, s: ComputedStandardization): Promise<void> {
    await this.db.query(`UPDATE coordinator.task_runs SET standardization = $2, updated_at = now() WHERE task_id = $1`, [taskId, JSON.stringify(s)]);
  }

  async figures(taskId: number): Promise<{ round: number; train_loss: number; eval_loss: number; eval_accuracy: number; eval_examples: number }[]> {
    return this.db.query(
      `SELECT round, train_loss, eval_loss, eval_accuracy, eval_examples FROM coordinator.rounds WHERE task_id = $1 AND status = 'completed' ORDER BY round`,
      [taskId],
    );
  }
}

/** Refuses bytes read back whose SHA-256 is not the one stored with them; `what` says whose, up to the verb. */
function checkHash(bytes: Buffer, stored: string, what: string): void {
  const sha = sha256Hex(bytes);
  if (sha !== stored) throw new Error(`${what} SHA-256 ${sha}, stored as ${stored}`);
}

/**
 * The concatenation of `segments` cut into pieces of `size` bytes (the last
 * shorter): views where a piece lies within one segment, a copy of at most
 * `size` bytes where it spans several.
 */
export function* cut(segments: readonly Buffer[], size: number): Generator<Buffer> {
  let parts: Buffer[] = [];
  let held = 0;
  for (const segment of segments) {
    let at = 0;
    while (at < segment.length) {
      const take = Math.min(size - held, segment.length - at);
      parts.push(segment.subarray(at, at + take));
      held += take;
      at += take;
      if (held === size) {
        yield parts.length === 1 ? parts[0] : Buffer.concat(parts, held);
        parts = [];
        held = 0;
      }
    }
  }
  if (held > 0) yield parts.length === 1 ? parts[0] : Buffer.concat(parts, held);
}
