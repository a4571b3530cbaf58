import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Initial schema: three Postgres schemas, one per owner.
 *  - gateway.*     written only by the gateway (tasks as users see them, their events)
 *  - coordinator.* written only by the coordinator (leases, nodes, rounds, checkpoints)
 *  - registry.*    written only by the built-in ("local") model registry
 *
 * Raw SQL on purpose: the schema is the contract, entities only map onto it.
 */
export class InitialSchema1767225600000 implements MigrationInterface {
  name = 'InitialSchema1767225600000';

  async up(q: QueryRunner): Promise<void> {
    // ---------------------------------------------------------------- gateway
    await q.query(`CREATE SCHEMA IF NOT EXISTS gateway`);
    await q.query(
      `CREATE TYPE gateway.task_status AS ENUM ('pending','running','success','failed','cancelled')`,
    );
    await q.query(`
      CREATE TABLE gateway.tasks (
        id                    serial PRIMARY KEY,
        user_id               text NOT NULL,
        use_case              text NOT NULL,
        model_name            text NOT NULL,
        model_version         integer NOT NULL,
        num_global_iterations integer NOT NULL,
        run_name              text,
        experiment_name       text,
        settings              jsonb NOT NULL DEFAULT '{}'::jsonb,
        status                gateway.task_status NOT NULL DEFAULT 'pending',
        reason                text,
        current_round         integer NOT NULL DEFAULT 0,
        metrics               jsonb,
        result_model_name     text,
        result_model_version  integer,
        cancel_requested_at   timestamptz,
        created_at            timestamptz NOT NULL DEFAULT now(),
        started_at            timestamptz,
        finished_at           timestamptz,
        updated_at            timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX tasks_user_id_idx ON gateway.tasks (user_id)`);
    await q.query(`CREATE INDEX tasks_status_idx ON gateway.tasks (status)`);
    await q.query(`
      CREATE TABLE gateway.task_events (
        id         bigserial PRIMARY KEY,
        task_id    integer NOT NULL REFERENCES gateway.tasks(id) ON DELETE CASCADE,
        type       text NOT NULL,
        round      integer,
        payload    jsonb NOT NULL DEFAULT '{}'::jsonb,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    // one event per (task, type, round): a redelivered message is ignored
    // (INSERT ... ON CONFLICT DO NOTHING). NULL round counts as -1.
    await q.query(
      `CREATE UNIQUE INDEX task_events_dedup_idx ON gateway.task_events (task_id, type, (coalesce(round, -1)))`,
    );

    // ------------------------------------------------------------ coordinator
    await q.query(`CREATE SCHEMA IF NOT EXISTS coordinator`);
    await q.query(`
      CREATE TABLE coordinator.task_runs (
        task_id          integer PRIMARY KEY,
        spec             jsonb NOT NULL,
        owner            text,
        lease_expires_at timestamptz,
        state            text NOT NULL DEFAULT 'queued'
                         CHECK (state IN ('queued','running','finished')),
        outcome          text,
        cancel_requested boolean NOT NULL DEFAULT false,
        current_round    integer NOT NULL DEFAULT 0,
        created_at       timestamptz NOT NULL DEFAULT now(),
        updated_at       timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(
      `CREATE INDEX task_runs_claim_idx ON coordinator.task_runs (state, lease_expires_at)`,
    );
    await q.query(`
      CREATE TABLE coordinator.nodes (
        name          text PRIMARY KEY,
        use_cases     text[] NOT NULL,
        examples      jsonb NOT NULL DEFAULT '{}'::jsonb,
        status        text NOT NULL DEFAULT 'online',
        registered_at timestamptz NOT NULL DEFAULT now(),
        last_seen_at  timestamptz NOT NULL DEFAULT now(),
        info          jsonb NOT NULL DEFAULT '{}'::jsonb
      )`);
    await q.query(`
      CREATE TABLE coordinator.rounds (
        task_id       integer NOT NULL,
        round         integer NOT NULL,
        status        text NOT NULL CHECK (status IN ('running','completed','failed')),
        participants  integer NOT NULL DEFAULT 0,
        examples      integer NOT NULL DEFAULT 0,
        train_loss    double precision,
        eval_loss     double precision,
        eval_accuracy double precision,
        eval_examples integer,
        started_at    timestamptz NOT NULL DEFAULT now(),
        finished_at   timestamptz,
        duration_ms   integer,
        PRIMARY KEY (task_id, round)
      )`);
    await q.query(`
      CREATE TABLE coordinator.round_participants (
        task_id    integer NOT NULL,
        round      integer NOT NULL,
        node_name  text NOT NULL,
        phase      text NOT NULL CHECK (phase IN ('fit','evaluate')),
        status     text NOT NULL CHECK (status IN ('selected','received','rejected','missing','failed')),
        examples   integer,
        loss       double precision,
        accuracy   double precision,
        reason     text,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (task_id, round, node_name, phase)
      )`);
    await q.query(`
      CREATE TABLE coordinator.checkpoints (
        task_id    integer NOT NULL,
        round      integer NOT NULL,
        weights    bytea NOT NULL,
        sha256     text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (task_id, round)
      )`);

    // --------------------------------------------------------------- registry
    await q.query(`CREATE SCHEMA IF NOT EXISTS registry`);
    await q.query(`
      CREATE TABLE registry.registered_models (
        name        text PRIMARY KEY,
        description text,
        tags        jsonb NOT NULL DEFAULT '{}'::jsonb,
        aliases     jsonb NOT NULL DEFAULT '{}'::jsonb,
        created_at  timestamptz NOT NULL DEFAULT now(),
        updated_at  timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE registry.model_versions (
        name        text NOT NULL REFERENCES registry.registered_models(name) ON DELETE CASCADE,
        version     integer NOT NULL CHECK (version > 0),
        source      text NOT NULL,
        run_id      text,
        tags        jsonb NOT NULL DEFAULT '{}'::jsonb,
        description text,
        status      text NOT NULL DEFAULT 'READY',
        created_at  timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (name, version)
      )`);
    await q.query(
      `CREATE INDEX model_versions_tags_idx ON registry.model_versions USING gin (tags jsonb_path_ops)`,
    );
    await q.query(`
      CREATE TABLE registry.runs (
        id              text PRIMARY KEY,
        experiment_name text NOT NULL,
        run_name        text NOT NULL,
        parent_run_id   text,
        status          text NOT NULL DEFAULT 'RUNNING'
                        CHECK (status IN ('RUNNING','FINISHED','FAILED','KILLED')),
        params          jsonb NOT NULL DEFAULT '{}'::jsonb,
        tags            jsonb NOT NULL DEFAULT '{}'::jsonb,
        start_time      timestamptz NOT NULL DEFAULT now(),
        end_time        timestamptz
      )`);
    await q.query(`
      CREATE TABLE registry.run_metrics (
        run_id    text NOT NULL REFERENCES registry.runs(id) ON DELETE CASCADE,
        key       text NOT NULL,
        step      integer NOT NULL,
        value     double precision NOT NULL,
        timestamp timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (run_id, key, step)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS registry.run_metrics`);
    await q.query(`DROP TABLE IF EXISTS registry.runs`);
    await q.query(`DROP TABLE IF EXISTS registry.model_versions`);
    await q.query(`DROP TABLE IF EXISTS registry.registered_models`);
    await q.query(`DROP SCHEMA IF EXISTS registry`);
    await q.query(`DROP TABLE IF EXISTS coordinator.checkpoints`);
    await q.query(`DROP TABLE IF EXISTS coordinator.round_participants`);
    await q.query(`DROP TABLE IF EXISTS coordinator.rounds`);
    await q.query(`DROP TABLE IF EXISTS coordinator.nodes`);
    await q.query(`DROP TABLE IF EXISTS coordinator.task_runs`);
    await q.query(`DROP SCHEMA IF EXISTS coordinator`);
    await q.query(`DROP TABLE IF EXISTS gateway.task_events`);
    await q.query(`DROP TABLE IF EXISTS gateway.tasks`);
    await q.query(`DROP TYPE IF EXISTS gateway.task_status`);
    await q.query(`DROP SCHEMA IF EXISTS gateway`);
  }
}
