/**
 * The model registry as the platform sees it. Shaped after MLflow's REST API 2.0
 * (registered-models, model-versions, runs, metrics, mlflow-artifacts) so that an
 * MLflow backend maps onto it one call to one (or a few) requests; the built-in
 * "local" backend implements the same semantics over Postgres tables + a folder.
 *
 * Versions are numbers here; MLflow sends them as strings ("3") — the MLflow
 * backend converts at its edge.
 */

export interface ModelArtifact {
  /** Relative POSIX path inside the version, e.g. "model.onnx" or "weights/init.safetensors". */
  path: string;
  data: Buffer;
}

export interface ModelVersionInfo {
  name: string;
  version: number;
  /** Where the artifacts live (local: `local-artifacts:/<name>/<version>`, MLflow: `mlflow-artifacts:/...`). */
  source: string;
  runId?: string;
  tags: Record<string, string>;
  description?: string;
  createdAt: Date;
}

export interface RegisteredModelSummary {
  name: string;
  description?: string;
  latestVersion: number | null;
  tags: Record<string, string>;
}

export type RunStatus = 'RUNNING' | 'FINISHED' | 'FAILED' | 'KILLED';

export interface MetricPoint {
  key: string;
  value: number;
  step: number;
  timestamp?: Date;
}

/** What `getRun` returns (MLflow `runs/get`: info + data). `metrics` holds the latest step per key. */
export interface RunInfo {
  runId: string;
  experimentName: string;
  runName: string;
  parentRunId?: string;
  status: RunStatus;
  params: Record<string, string>;
  tags: Record<string, string>;
  metrics: Record<string, number>;
  startTime: Date;
  endTime?: Date;
}

export interface ModelRegistry {
  readonly backend: 'local' | 'mlflow';

  /** Creates the registered model; idempotent (an existing model is left as it is). */
  createModel(name: string, opts?: { description?: string; tags?: Record<string, string> }): Promise<void>;

  /**
   * Creates the next version (1, 2, 3, ...) with these artifacts. Numbering is atomic:
   * concurrent callers get distinct numbers. The model must exist (ModelNotFoundError).
   */
  createVersion(
    name: string,
    artifacts: ModelArtifact[],
    opts?: { tags?: Record<string, string>; description?: string; runId?: string },
  ): Promise<ModelVersionInfo>;

  /** null when the model or the version does not exist. */
  getVersion(name: string, version: number): Promise<ModelVersionInfo | null>;

  /** All artifacts of a version, byte-exact, sorted by path. ModelVersionNotFoundError if missing. */
  downloadArtifacts(name: string, version: number): Promise<ModelArtifact[]>;

  /** Versions matching every given criterion (tags: all key=value pairs must match), by name then version. */
  searchVersions(filter: { name?: string; tags?: Record<string, string> }): Promise<ModelVersionInfo[]>;

  listModels(): Promise<RegisteredModelSummary[]>;

  setVersionTag(name: string, version: number, key: string, value: string): Promise<void>;

  /** Points `alias` at `version` (moving it if it pointed elsewhere). */
  setAlias(name: string, alias: string, version: number): Promise<void>;

  // ---- experiment tracking (MLflow semantics)
  startRun(opts: {
    experimentName: string;
    runName: string;
    parentRunId?: string;
    tags?: Record<string, string>;
  }): Promise<{ runId: string }>;
  /** Params are write-once per key (as in MLflow): re-logging the same value is fine, a different value is an error. */
  logParams(runId: string, params: Record<string, string>): Promise<void>;
  /** Logging a (key, step) again overwrites its value. */
  logMetrics(runId: string, metrics: MetricPoint[]): Promise<void>;
  /**
   * Several runs' metrics at once (a round's figures for the task and for each
   * site), as logMetrics for each. The built-in registry writes them in one
   * statement and nothing at all when a run is unknown; MLflow takes one
   * log-batch call per run.
   */
  logMetricsOfRuns(entries: { runId: string; metrics: MetricPoint[] }[]): Promise<void>;
  endRun(runId: string, status: 'FINISHED' | 'FAILED' | 'KILLED'): Promise<void>;

  /** null when unknown. */
  getRun(runId: string): Promise<RunInfo | null>;
  /** All points of one metric, by step. */
  getMetricHistory(runId: string, key: string): Promise<Required<MetricPoint>[]>;
}

// ------------------------------------------------------------------ errors

export type RegistryErrorCode = 'INVALID_ARGUMENT' | 'NOT_FOUND' | 'CONFLICT' | 'BACKEND';

/** Base class of every registry error. `code` maps to HTTP: 400/404/409/502. */
export class RegistryError extends Error {
  constructor(
    message: string,
    readonly code: RegistryErrorCode = 'BACKEND',
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RegistryError';
  }
}

export class ModelNotFoundError extends RegistryError {
  constructor(readonly modelName: string) {
    super(`Registered model '${modelName}' does not exist`, 'NOT_FOUND');
    this.name = 'ModelNotFoundError';
  }
}

export class ModelVersionNotFoundError extends RegistryError {
  constructor(
    readonly modelName: string,
    readonly version: number,
  ) {
    super(`Model '${modelName}' has no version ${version}`, 'NOT_FOUND');
    this.name = 'ModelVersionNotFoundError';
  }
}

export class RunNotFoundError extends RegistryError {
  constructor(readonly runId: string) {
    super(`Run '${runId}' does not exist`, 'NOT_FOUND');
    this.name = 'RunNotFoundError';
  }
}

/** Bad input: a model name, artifact path, tag or version that is not allowed. `field` says which. */
export class RegistryValidationError extends RegistryError {
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`Invalid ${field}: ${reason}`, 'INVALID_ARGUMENT');
    this.name = 'RegistryValidationError';
  }
}

// ------------------------------------------------------------------ validation shared by backends

/** Model names: 1-128 chars of [A-Za-z0-9._-], starting with a letter or digit. */
export const MODEL_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function validateModelName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !MODEL_NAME_PATTERN.test(name)) {
    throw new RegistryValidationError(
      'model name',
      `${JSON.stringify(name)} must be 1-128 characters of letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  }
}

export function validateVersion(version: unknown): asserts version is number {
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1 || version > 2_147_483_647) {
    throw new RegistryValidationError('version', `${JSON.stringify(version)} must be a positive integer`);
  }
}

/**
 * Artifact paths: relative POSIX paths, segments of printable characters without
 * '/', '\\' or NUL, no '.' / '..' / empty segments, at most 512 chars.
 */
export function validateArtifactPath(p: unknown): asserts p is string {
  const bad = (reason: string) => new RegistryValidationError('artifact path', `${JSON.stringify(p)} ${reason}`);
  if (typeof p !== 'string' || p.length === 0) throw bad('must be a non-empty string');
  if (p.length > 512) throw bad('is longer than 512 characters');
  if (p.startsWith('/') || /^[A-Za-z]:/.test(p)) throw bad('must be relative, not absolute');
  if (p.includes('\\')) throw bad("must use '/' as separator (no backslashes)");
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(p)) throw bad('contains control characters');
  for (const seg of p.split('/')) {
    if (seg === '..') throw bad("must not contain '..'");
    if (seg === '' || seg === '.') throw bad("must not contain empty or '.' segments");
  }
}

export function validateTags(tags: unknown, field = 'tags'): asserts tags is Record<string, string> {
  if (tags === undefined) return;
  if (tags === null || typeof tags !== 'object' || Array.isArray(tags)) {
    throw new RegistryValidationError(field, 'must be an object of string values');
  }
  for (const [k, v] of Object.entries(tags)) {
    if (!k || k.length > 250) throw new RegistryValidationError(field, `key ${JSON.stringify(k)} must be 1-250 characters`);
    if (typeof v !== 'string') throw new RegistryValidationError(field, `value of '${k}' must be a string`);
  }
}

/**
 * A version's artifact list: at least one, valid paths, Buffers, no duplicates, and
 * no path that is both a file and a folder ("a" and "a/b"), which no file tree can hold.
 */
export function validateArtifacts(artifacts: unknown): asserts artifacts is ModelArtifact[] {
  if (!Array.isArray(artifacts) || artifacts.length === 0) {
    throw new RegistryValidationError('artifacts', 'at least one artifact is required');
  }
  const seen = new Set<string>();
  for (const a of artifacts as ModelArtifact[]) {
    validateArtifactPath(a?.path);
    if (!Buffer.isBuffer(a.data)) {
      throw new RegistryValidationError('artifact data', `'${a.path}' must be a Buffer`);
    }
    if (seen.has(a.path)) throw new RegistryValidationError('artifact path', `'${a.path}' appears twice`);
    seen.add(a.path);
  }
  for (const p of seen) {
    const segs = p.split('/');
    for (let i = 1; i < segs.length; i++) {
      const prefix = segs.slice(0, i).join('/');
      if (seen.has(prefix)) {
        throw new RegistryValidationError('artifact path', `'${prefix}' is a file and also a folder of '${p}'`);
      }
    }
  }
}

/** Metric points: key 1-250 chars, numeric value, step a non-negative int32 (as MLflow stores it). */
export function validateMetricPoints(metrics: unknown): asserts metrics is MetricPoint[] {
  if (!Array.isArray(metrics)) throw new RegistryValidationError('metrics', 'must be an array');
  for (const p of metrics as MetricPoint[]) {
    if (!p || typeof p.key !== 'string' || !p.key || p.key.length > 250) {
      throw new RegistryValidationError('metric key', `${JSON.stringify(p?.key)} must be 1-250 characters`);
    }
    if (typeof p.value !== 'number') throw new RegistryValidationError('metric value', `'${p.key}' must be a number`);
    if (!Number.isSafeInteger(p.step) || p.step < 0 || p.step > 2_147_483_647) {
      throw new RegistryValidationError('metric step', `'${p.key}' step ${p.step} must be a non-negative integer`);
    }
    if (p.timestamp !== undefined && !(p.timestamp instanceof Date && !isNaN(p.timestamp.getTime()))) {
      throw new RegistryValidationError('metric timestamp', `'${p.key}' timestamp must be a valid Date`);
    }
  }
}

/** Run end states accepted by endRun. */
export function validateEndStatus(status: unknown): asserts status is 'FINISHED' | 'FAILED' | 'KILLED' {
  if (status !== 'FINISHED' && status !== 'FAILED' && status !== 'KILLED') {
    throw new RegistryValidationError('status', `${JSON.stringify(status)} must be FINISHED, FAILED or KILLED`);
  }
}
