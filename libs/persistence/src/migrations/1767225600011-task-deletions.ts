import { MigrationInterface, QueryRunner } from 'typeorm';

/** The coordinator's tables of a task with few rows per round, each keyed by task_id. */
const TASK_TABLES = ['task_runs', 'rounds', 'checkpoints', 'checkpoint_chunks'];

/** Takes the task's lease row FOR KEY SHARE (as a foreign key check would): see below. */
const LOCK_LEASE_ROW = (ids: string) => `PERFORM 1 FROM coordinator.task_runs WHERE task_id IN (${ids}) ORDER BY task_id FOR KEY SHARE;`;

/**
 * Tasks deleted through the gateway (DELETE /tasks) are purged from the
 * coordinators' tables too: checkpoints are model weights.
 *  - gateway.task_deletion_outbox: ids the gateway deleted, written in the
 *    statement that deletes them and removed once the broker confirmed their
 *    `tasks.deleted` message, so that a gateway stopped before that sends it
 *    at its next start.
 *  - coordinator.deleted_tasks: what a coordinator received, kept for good
 *    (an id and two times): `purged_at` says when the task's rows went.
 *  - Triggers on the coordinator's tables of a task refuse, silently, a row
 *    of a deleted task, whoever writes it: a submission arriving late, a
 *    runner finishing its round after the cancel, or a coordinator that lost
 *    its lease and has not noticed yet. They first take the task's lease row
 *    FOR KEY SHARE (as a foreign key check would), which never waits on the
 *    lease holder's own updates but makes a purge, which locks that row FOR
 *    UPDATE, wait for a write in flight and delete its rows too. A row
 *    trigger skips the row before it is written; round_participants, with a
 *    row per site and phase (1,000 sites: thousands of rows a round, where a row
 *    trigger cost about 10 us a row here), has a statement trigger instead,
 *    which removes the statement's rows of deleted tasks before it ends.
 */
export class TaskDeletions1767225600011 implements MigrationInterface {
  name = 'TaskDeletions1767225600011';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE gateway.task_deletion_outbox (
        task_id    integer PRIMARY KEY,
        deleted_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE coordinator.deleted_tasks (
        task_id    integer PRIMARY KEY,
        deleted_at timestamptz NOT NULL DEFAULT now(),
        purged_at  timestamptz
      )`);
    await q.query(`CREATE INDEX deleted_tasks_unpurged_idx ON coordinator.deleted_tasks (task_id) WHERE purged_at IS NULL`);
    await q.query(`
      CREATE FUNCTION coordinator.refuse_rows_of_deleted_tasks() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        ${LOCK_LEASE_ROW('NEW.task_id')}
        IF EXISTS (SELECT 1 FROM coordinator.deleted_tasks WHERE task_id = NEW.task_id) THEN
          RETURN NULL;
        END IF;
        RETURN NEW;
      END
      $$`);
    for (const table of TASK_TABLES) {
      await q.query(
        `CREATE TRIGGER refuse_rows_of_deleted_tasks BEFORE INSERT ON coordinator.${table} FOR EACH ROW EXECUTE FUNCTION coordinator.refuse_rows_of_deleted_tasks()`,
      );
    }
    await q.query(`
      CREATE FUNCTION coordinator.remove_participants_of_deleted_tasks() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        ${LOCK_LEASE_ROW('SELECT DISTINCT task_id FROM added')}
        DELETE FROM coordinator.round_participants p USING added a, coordinator.deleted_tasks d
        WHERE d.task_id = a.task_id AND p.task_id = a.task_id AND p.round = a.round AND p.node_name = a.node_name AND p.phase = a.phase;
        RETURN NULL;
      END
      $$`);
    await q.query(
      `CREATE TRIGGER remove_participants_of_deleted_tasks AFTER INSERT ON coordinator.round_participants REFERENCING NEW TABLE AS added
       FOR EACH STATEMENT EXECUTE FUNCTION coordinator.remove_participants_of_deleted_tasks()`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER remove_participants_of_deleted_tasks ON coordinator.round_participants`);
    await q.query(`DROP FUNCTION coordinator.remove_participants_of_deleted_tasks()`);
    for (const table of TASK_TABLES) await q.query(`DROP TRIGGER refuse_rows_of_deleted_tasks ON coordinator.${table}`);
    await q.query(`DROP FUNCTION coordinator.refuse_rows_of_deleted_tasks()`);
    await q.query(`DROP TABLE coordinator.deleted_tasks`);
    await q.query(`DROP TABLE gateway.task_deletion_outbox`);
  }
}
