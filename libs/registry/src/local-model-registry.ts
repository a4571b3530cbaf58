import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { DataSource, EntityManager } from 'typeorm';
import {
  MetricPoint,
  ModelArtifact,
  ModelNotFoundError,
  ModelRegistry,
  ModelVersionInfo,
  ModelVersionNotFoundError,
  RegisteredModelSummary,
  RegistryError,
  RegistryValidationError,
  RunInfo,
  RunNotFoundError,
  RunStatus,
  validateArtifacts,
  validateEndStatus,
  validateMetricPoints,
  validateModelName,
  validateTags,
  validateVersion,
} from './model-registry';

export interface LocalModelRegistryOptions {
  /** Initialised DataSource whose database has the `registry` schema (runMigrations). */
  dataSource: DataSource;
  /** Folder holding `<model name>/<version>/<artifact path>`. Created if missing. */
  artifactDir: string;
}

export const LOCAL_ARTIFACT_SCHEME = 'local-artifacts:';

const STAGING = '.staging';

interface VersionRow {
  name: string;
  version: number;
  source: string;
  run_id: string | null;
  tags: Record<string, string>;
  description: string | null;
  created_at: Date;
}

function toInfo(r: VersionRow): ModelVersionInfo {
  return {
    name: r.name,
    version: r.version,
    source: r.source,
    ...(r.run_id ? { runId: r.run_id } : {}),
    tags: r.tags ?? {},
    ...(r.description != null ? { description: r.description } : {}),
    createdAt: r.created_at,
  };
}

const VERSION_COLS = 'name, version, source, run_id, tags, description, created_at';

/**
 * Built-in registry: metadata in `registry.*` tables, artifacts in a folder.
 *
 * Creating a version: artifacts are first written to `<artifactDir>/.staging/<uuid>/`
 * (each file via temp name + rename), then, inside a transaction holding
 * `SELECT ... FOR UPDATE` on the model row, the next number is taken, the staged
 * folder is renamed to `<name>/<version>` (atomic on one filesystem) and the row is
 * inserted. A reader therefore never sees a version row without its complete files;
 * concurrent creators are serialised by the row lock and get distinct numbers.
 *
 * All queries inside transactions go through the transaction's EntityManager
 * (never the DataSource: that hangs on the embedded PGlite server).
 */
export class LocalModelRegistry implements ModelRegistry {
  readonly backend = 'local' as const;
  private readonly ds: DataSource;
  private readonly root: string;

  constructor(opts: LocalModelRegistryOptions);
  constructor(dataSource: DataSource, artifactDir: string);
  constructor(a: LocalModelRegistryOptions | DataSource, artifactDir?: string) {
    const opts: LocalModelRegistryOptions = a instanceof DataSource ? { dataSource: a, artifactDir: artifactDir! } : a;
    if (!opts.artifactDir) throw new RegistryValidationError('artifactDir', 'is required');
    this.ds = opts.dataSource;
    this.root = path.resolve(opts.artifactDir);
  }

  /** Folder of one version's artifacts. */
  versionDir(name: string, version: number): string {
    validateModelName(name);
    validateVersion(version);
    return path.join(this.root, name, String(version));
  }

  async createModel(name: string, opts: { description?: string; tags?: Record<string, string> } = {}): Promise<void> {
    validateModelName(name);
    validateTags(opts.tags);
    await this.ds.query(
      `INSERT INTO registry.registered_models (name, description, tags) VALUES ($1, $2, $3::jsonb)
       ON CONFLICT (name) DO NOTHING`,
      [name, opts.description ?? null, JSON.stringify(opts.tags ?? {})],
    );
  }

  async createVersion(
    name: string,
    artifacts: ModelArtifact[],
    opts: { tags?: Record<string, string>; description?: string; runId?: string } = {},
  ): Promise<ModelVersionInfo> {
    validateModelName(name);
    validateTags(opts.tags);
    validateArtifacts(artifacts);

    const staging = path.join(this.root, STAGING, randomUUID());
    await this.writeStaged(staging, artifacts);
    let finalDir: string | undefined;
    try {
      const row = await this.ds.transaction(async (m) => {
        const locked = await m.query(
          `SELECT name FROM registry.registered_models WHERE name = $1 FOR UPDATE`,
          [name],
        );
        if (!locked.length) throw new ModelNotFoundError(name);
        const [{ next }] = await m.query(
          `SELECT coalesce(max(version), 0) + 1 AS next FROM registry.model_versions WHERE name = $1`,
          [name],
        );
        const version = Number(next);
        const dir = path.join(this.root, name, String(version));
        // a folder without a row is debris of a crashed attempt (we hold the lock): replace it
        await fs.rm(dir, { recursive: true, force: true });
        await fs.mkdir(path.dirname(dir), { recursive: true });
        await fs.rename(staging, dir);
        finalDir = dir;
        const rows: VersionRow[] = await m.query(
          `INSERT INTO registry.model_versions (name, version, source, run_id, tags, description)
           VALUES ($1, $2, $3, $4, $5::jsonb, $6) RETURNING ${VERSION_COLS}`,
          [
            name,
            version,
            `${LOCAL_ARTIFACT_SCHEME}/${name}/${version}`,
            opts.runId ?? null,
            JSON.stringify(opts.tags ?? {}),
            opts.description ?? null,
          ],
        );
        await m.query(`UPDATE registry.registered_models SET updated_at = now() WHERE name = $1`, [name]);
        return rows[0];
      });
      return toInfo(row);
    } catch (err) {
      await fs.rm(finalDir ?? staging, { recursive: true, force: true }).catch(() => undefined);
      if (err instanceof RegistryError) throw err;
      throw new RegistryError(`Could not create a version of '${name}': ${(err as Error)?.message ?? err}`, 'BACKEND', {
        cause: err,
      });
    }
  }

  async getVersion(name: string, version: number): Promise<ModelVersionInfo | null> {
    validateModelName(name);
    validateVersion(version);
    const rows: VersionRow[] = await this.ds.query(
      `SELECT ${VERSION_COLS} FROM registry.model_versions WHERE name = $1 AND version = $2`,
      [name, version],
    );
    return rows.length ? toInfo(rows[0]) : null;
  }

  async downloadArtifacts(name: string, version: number): Promise<ModelArtifact[]> {
    if (!(await this.getVersion(name, version))) throw new ModelVersionNotFoundError(name, version);
    const dir = this.versionDir(name, version);
    const out: ModelArtifact[] = [];
    const walk = async (rel: string): Promise<void> => {
      const entries = await fs.readdir(path.join(dir, rel), { withFileTypes: true });
      for (const e of entries) {
        const r = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) await walk(r);
        else if (e.isFile()) out.push({ path: r, data: await fs.readFile(path.join(dir, r)) });
      }
    };
    try {
      await walk('');
    } catch (err: any) {
      if (err?.code === 'ENOENT') {
        throw new RegistryError(`Artifacts of '${name}' version ${version} are missing from ${dir}`, 'BACKEND', { cause: err });
      }
      throw err;
    }
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  async searchVersions(filter: { name?: string; tags?: Record<string, string> } = {}): Promise<ModelVersionInfo[]> {
    if (filter.name !== undefined) validateModelName(filter.name);
    validateTags(filter.tags, 'tag filter');
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.name !== undefined) {
      params.push(filter.name);
      where.push(`name = $${params.length}`);
    }
    if (filter.tags && Object.keys(filter.tags).length) {
      params.push(JSON.stringify(filter.tags));
      where.push(`tags @> $${params.length}::jsonb`);
    }
    const rows: VersionRow[] = await this.ds.query(
      `SELECT ${VERSION_COLS} FROM registry.model_versions
       ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY name, version`,
      params,
    );
    return rows.map(toInfo);
  }

  async listModels(): Promise<RegisteredModelSummary[]> {
    const rows: { name: string; description: string | null; tags: Record<string, string>; latest: number | null }[] =
      await this.ds.query(
        `SELECT m.name, m.description, m.tags,
                (SELECT max(v.version) FROM registry.model_versions v WHERE v.name = m.name) AS latest
           FROM registry.registered_models m ORDER BY m.name`,
      );
    return rows.map((r) => ({
      name: r.name,
      ...(r.description != null ? { description: r.description } : {}),
      latestVersion: r.latest == null ? null : Number(r.latest),
      tags: r.tags ?? {},
    }));
  }

  async setVersionTag(name: string, version: number, key: string, value: string): Promise<void> {
    validateModelName(name);
    validateVersion(version);
    validateTags({ [key]: value }, 'tag');
    const [, count] = await this.ds.query(
      `UPDATE registry.model_versions SET tags = tags || jsonb_build_object($3::text, $4::text)
        WHERE name = $1 AND version = $2`,
      [name, version, key, value],
    );
    if (!count) throw new ModelVersionNotFoundError(name, version);
  }

  async setAlias(name: string, alias: string, version: number): Promise<void> {
    validateModelName(name);
    validateVersion(version);
    if (typeof alias !== 'string' || !/^[A-Za-z_][A-Za-z0-9_-]{0,63}$/.test(alias) || /^v\d+$/i.test(alias)) {
      throw new RegistryValidationError('alias', `${JSON.stringify(alias)} must be 1-64 of [A-Za-z0-9_-], start with a letter or '_', and not look like a version ('v1')`);
    }
    const [, count] = await this.ds.query(
      `UPDATE registry.registered_models
          SET aliases = aliases || jsonb_build_object($2::text, $3::int), updated_at = now()
        WHERE name = $1 AND EXISTS (SELECT 1 FROM registry.model_versions WHERE name = $1 AND version = $3)`,
      [name, alias, version],
    );
    if (!count) {
      const exists = await this.ds.query(`SELECT 1 FROM registry.registered_models WHERE name = $1`, [name]);
      if (!exists.length) throw new ModelNotFoundError(name);
      throw new ModelVersionNotFoundError(name, version);
    }
  }

  /** Version an alias points at (null if the alias is not set). Not part of ModelRegistry. */
  async getVersionByAlias(name: string, alias: string): Promise<ModelVersionInfo | null> {
    validateModelName(name);
    const rows: VersionRow[] = await this.ds.query(
      `SELECT ${VERSION_COLS} FROM registry.model_versions v
        WHERE v.name = $1 AND v.version = (
          SELECT (m.aliases ->> $2)::int FROM registry.registered_models m WHERE m.name = $1)`,
      [name, alias],
    );
    return rows.length ? toInfo(rows[0]) : null;
  }

  // ------------------------------------------------------------------ runs

  async startRun(opts: {
    experimentName: string;
    runName: string;
    parentRunId?: string;
    tags?: Record<string, string>;
  }): Promise<{ runId: string }> {
    if (!opts?.experimentName || typeof opts.experimentName !== 'string') {
      throw new RegistryValidationError('experimentName', 'must be a non-empty string');
    }
    if (!opts.runName || typeof opts.runName !== 'string') {
      throw new RegistryValidationError('runName', 'must be a non-empty string');
    }
    validateTags(opts.tags);
    const runId = randomUUID().replace(/-/g, ''); // MLflow run ids are 32 hex chars
    await this.ds.query(
      `INSERT INTO registry.runs (id, experiment_name, run_name, parent_run_id, status, tags)
       VALUES ($1, $2, $3, $4, 'RUNNING', $5::jsonb)`,
      [runId, opts.experimentName, opts.runName, opts.parentRunId ?? null, JSON.stringify(opts.tags ?? {})],
    );
    return { runId };
  }

  async logParams(runId: string, params: Record<string, string>): Promise<void> {
    validateTags(params, 'params');
    await this.ds.transaction(async (m: EntityManager) => {
      const rows = await m.query(`SELECT params FROM registry.runs WHERE id = $1 FOR UPDATE`, [runId]);
      if (!rows.length) throw new RunNotFoundError(runId);
      const existing: Record<string, string> = rows[0].params ?? {};
      for (const [k, v] of Object.entries(params)) {
        if (k in existing && existing[k] !== v) {
          throw new RegistryError(
            `Param '${k}' of run ${runId} is already '${existing[k]}'; params cannot be changed (tried '${v}')`,
            'CONFLICT',
          );
        }
      }
      await m.query(`UPDATE registry.runs SET params = params || $2::jsonb WHERE id = $1`, [runId, JSON.stringify(params)]);
    });
  }

  async logMetrics(runId: string, metrics: MetricPoint[]): Promise<void> {
    await this.logMetricsOfRuns([{ runId, metrics }]);
  }

  async logMetricsOfRuns(entries: { runId: string; metrics: MetricPoint[] }[]): Promise<void> {
    const rows: { runId: string; p: MetricPoint }[] = [];
    for (const { runId, metrics } of entries) {
      validateMetricPoints(metrics);
      // last write wins for a repeated (key, step) inside one batch too
      const dedup = new Map<string, MetricPoint>();
      for (const p of metrics) dedup.set(`${p.key}\u0000${p.step}`, p);
      for (const p of dedup.values()) rows.push({ runId, p });
    }
    if (!rows.length) return;
    // One statement, whatever the number of runs (a round logs every site's figures): nothing is written when a run is unknown.
    const [{ missing }]: { missing: string | null }[] = await this.ds.query(
      `WITH points AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::float8[], $5::timestamptz[]) AS u(run_id, k, s, v, t)
       ),
       missing AS (SELECT DISTINCT p.run_id FROM points p WHERE NOT EXISTS (SELECT 1 FROM registry.runs r WHERE r.id = p.run_id)),
       written AS (
         INSERT INTO registry.run_metrics (run_id, key, step, value, timestamp)
         SELECT run_id, k, s, v, t FROM points WHERE NOT EXISTS (SELECT 1 FROM missing)
         ON CONFLICT (run_id, key, step) DO UPDATE SET value = EXCLUDED.value, timestamp = EXCLUDED.timestamp
       )
       SELECT (SELECT min(run_id) FROM missing) AS missing`,
      [
        rows.map((r) => r.runId),
        rows.map((r) => r.p.key),
        rows.map((r) => r.p.step),
        rows.map((r) => (Number.isFinite(r.p.value) ? r.p.value : String(r.p.value))),
        rows.map((r) => (r.p.timestamp ?? new Date()).toISOString()),
      ],
    );
    if (missing) throw new RunNotFoundError(missing);
  }

  async endRun(runId: string, status: 'FINISHED' | 'FAILED' | 'KILLED'): Promise<void> {
    validateEndStatus(status);
    const [, count] = await this.ds.query(
      `UPDATE registry.runs SET status = $2, end_time = now() WHERE id = $1`,
      [runId, status],
    );
    if (!count) throw new RunNotFoundError(runId);
  }

  async getRun(runId: string): Promise<RunInfo | null> {
    const rows = await this.ds.query(
      `SELECT id, experiment_name, run_name, parent_run_id, status, params, tags, start_time, end_time
         FROM registry.runs WHERE id = $1`,
      [runId],
    );
    if (!rows.length) return null;
    const r = rows[0];
    const latest: { key: string; value: number }[] = await this.ds.query(
      `SELECT DISTINCT ON (key) key, value FROM registry.run_metrics WHERE run_id = $1 ORDER BY key, step DESC`,
      [runId],
    );
    return {
      runId: r.id,
      experimentName: r.experiment_name,
      runName: r.run_name,
      ...(r.parent_run_id ? { parentRunId: r.parent_run_id } : {}),
      status: r.status as RunStatus,
      params: r.params ?? {},
      tags: r.tags ?? {},
      metrics: Object.fromEntries(latest.map((m) => [m.key, m.value])),
      startTime: r.start_time,
      ...(r.end_time ? { endTime: r.end_time } : {}),
    };
  }

  async getMetricHistory(runId: string, key: string): Promise<Required<MetricPoint>[]> {
    const rows: { key: string; value: number; step: number; timestamp: Date }[] = await this.ds.query(
      `SELECT key, value, step, timestamp FROM registry.run_metrics WHERE run_id = $1 AND key = $2 ORDER BY step`,
      [runId, key],
    );
    return rows.map((r) => ({ key: r.key, value: r.value, step: r.step, timestamp: r.timestamp }));
  }

  // ------------------------------------------------------------------ helpers

  private async writeStaged(dir: string, artifacts: ModelArtifact[]): Promise<void> {
    try {
      for (const a of artifacts) {
        const file = path.join(dir, ...a.path.split('/'));
        // belt and braces: the resolved file must stay inside the staging folder
        if (!file.startsWith(dir + path.sep)) throw new RegistryValidationError('artifact path', `'${a.path}' escapes the version folder`);
        await fs.mkdir(path.dirname(file), { recursive: true });
        const tmp = `${file}.tmp-${randomUUID()}`;
        const fh = await fs.open(tmp, 'wx');
        try {
          await fh.writeFile(a.data);
          await fh.sync();
        } finally {
          await fh.close();
        }
        await fs.rename(tmp, file);
      }
    } catch (err) {
      await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
  }
}
