import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A round's start and its end, and how the workers took part, as PL/pgSQL
 * functions. The coordinator writes a round's start and its end at every
 * round; sent as statements, PostgreSQL parsed and planned the six parts of
 * the end's statement every time, which was about half of its work for a
 * small model's round. A function's statements are prepared once per
 * session and their plans kept, and the call itself is short. Functions
 * rather than named prepared statements: they work the same behind a
 * connection pooler in transaction mode and on the embedded server, whose
 * connections share one session.
 *
 * Participants come as arrays, one per column (the same length): the call's
 * text does not depend on how many workers took part.
 */
export class RoundFunctions1767225600015 implements MigrationInterface {
  name = 'RoundFunctions1767225600015';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE OR REPLACE FUNCTION coordinator.record_participants(
        p_task integer, p_round integer, p_nodes text[], p_phases text[], p_statuses text[],
        p_examples integer[], p_losses double precision[], p_accuracies double precision[], p_reasons text[]
      ) RETURNS void LANGUAGE plpgsql AS $fn$
      BEGIN
        INSERT INTO coordinator.round_participants (task_id, round, node_name, phase, status, examples, loss, accuracy, reason, updated_at)
        SELECT p_task, p_round, r.node, r.phase, r.status, r.examples, r.loss, r.accuracy, r.reason, now()
        FROM unnest(p_nodes, p_phases, p_statuses, p_examples, p_losses, p_accuracies, p_reasons) AS r(node, phase, status, examples, loss, accuracy, reason)
        ON CONFLICT (task_id, round, node_name, phase) DO UPDATE SET status = EXCLUDED.status, examples = EXCLUDED.examples,
          loss = EXCLUDED.loss, accuracy = EXCLUDED.accuracy, reason = EXCLUDED.reason, updated_at = now();
      END
      $fn$`);
    await q.query(`
      CREATE OR REPLACE FUNCTION coordinator.start_round(p_task integer, p_round integer, p_selected text[], p_started_at timestamptz)
      RETURNS void LANGUAGE plpgsql AS $fn$
      BEGIN
        INSERT INTO coordinator.rounds (task_id, round, status, participants, examples, started_at)
        VALUES (p_task, p_round, 'running', cardinality(p_selected), 0, p_started_at)
        ON CONFLICT (task_id, round) DO UPDATE SET status = 'running', participants = EXCLUDED.participants, started_at = EXCLUDED.started_at, finished_at = NULL;
        INSERT INTO coordinator.round_participants (task_id, round, node_name, phase, status, updated_at)
        SELECT p_task, p_round, n, 'fit', 'selected', now() FROM unnest(p_selected) AS n
        ON CONFLICT (task_id, round, node_name, phase) DO UPDATE SET status = EXCLUDED.status, examples = NULL,
          loss = NULL, accuracy = NULL, reason = NULL, updated_at = now();
      END
      $fn$`);
    // The round's figures, its checkpoint (weights and strategy state in their fields, or empty ones to be
    // followed by pieces), the retirement of checkpoints older than the last p_keep (0: keep all), the
    // task's progress and the participants' records; and, where p_next_round is not null, the start of the
    // next round, whose fit went out with this round's evaluation (chained evaluation).
    await q.query(`
      CREATE OR REPLACE FUNCTION coordinator.complete_round(
        p_task integer, p_round integer, p_participants integer, p_examples integer, p_train_loss double precision,
        p_eval_loss double precision, p_eval_accuracy double precision, p_eval_examples integer, p_finished_at timestamptz,
        p_duration_ms integer, p_figures jsonb,
        p_weights bytea, p_sha256 text, p_pieces integer, p_state bytea, p_state_pieces integer, p_state_sha256 text, p_keep integer,
        p_nodes text[], p_phases text[], p_statuses text[], p_node_examples integer[], p_losses double precision[],
        p_accuracies double precision[], p_reasons text[],
        p_next_round integer, p_next_selected text[], p_next_started_at timestamptz
      ) RETURNS void LANGUAGE plpgsql AS $fn$
      BEGIN
        UPDATE coordinator.rounds SET status = 'completed', participants = p_participants, examples = p_examples, train_loss = p_train_loss,
          eval_loss = p_eval_loss, eval_accuracy = p_eval_accuracy, eval_examples = p_eval_examples, finished_at = p_finished_at,
          duration_ms = p_duration_ms, figures = p_figures
        WHERE task_id = p_task AND round = p_round;
        INSERT INTO coordinator.checkpoints (task_id, round, weights, sha256, strategy_state, pieces, state_pieces, state_sha256, created_at)
        VALUES (p_task, p_round, p_weights, p_sha256, p_state, p_pieces, p_state_pieces, p_state_sha256, now())
        ON CONFLICT (task_id, round) DO UPDATE SET weights = EXCLUDED.weights, sha256 = EXCLUDED.sha256, strategy_state = EXCLUDED.strategy_state,
          pieces = EXCLUDED.pieces, state_pieces = EXCLUDED.state_pieces, state_sha256 = EXCLUDED.state_sha256, created_at = now();
        DELETE FROM coordinator.checkpoint_chunks WHERE task_id = p_task AND round = p_round;
        IF p_keep > 0 THEN
          DELETE FROM coordinator.checkpoints WHERE task_id = p_task AND round <= p_round - p_keep;
          DELETE FROM coordinator.checkpoint_chunks WHERE task_id = p_task AND round <= p_round - p_keep;
        END IF;
        UPDATE coordinator.task_runs SET current_round = p_round, updated_at = now() WHERE task_id = p_task;
        PERFORM coordinator.record_participants(p_task, p_round, p_nodes, p_phases, p_statuses, p_node_examples, p_losses, p_accuracies, p_reasons);
        IF p_next_round IS NOT NULL THEN
          PERFORM coordinator.start_round(p_task, p_next_round, p_next_selected, p_next_started_at);
        END IF;
      END
      $fn$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS coordinator.complete_round(integer, integer, integer, integer, double precision, double precision, double precision, integer, timestamptz, integer, jsonb, bytea, text, integer, bytea, integer, text, integer, text[], text[], text[], integer[], double precision[], double precision[], text[], integer, text[], timestamptz)`);
    await q.query(`DROP FUNCTION IF EXISTS coordinator.start_round(integer, integer, text[], timestamptz)`);
    await q.query(`DROP FUNCTION IF EXISTS coordinator.record_participants(integer, integer, text[], text[], text[], integer[], double precision[], double precision[], text[])`);
  }
}
