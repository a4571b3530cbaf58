import { randomBytes } from 'node:crypto';
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
  validateArtifactPath,
  validateArtifacts,
  validateEndStatus,
  validateMetricPoints,
  validateTags,
  validateVersion,
} from '../model-registry';
import { parseRunsUri, proxyPathOf } from './artifact-uri';
import { MlflowApiError, MlflowHttpClient, MlflowHttpOptions } from './mlflow-http-client';
import {
  WireExperiment,
  WireMetric,
  WireModelVersion,
  WireRegisteredModel,
  WireRun,
  metricValueFromWire,
  metricValueToWire,
  modelFromWire,
  tagsFromWire,
  tagsToWire,
  toNumber,
  versionFromWire,
} from './mlflow-wire';

export interface MlflowModelRegistryOptions extends MlflowHttpOptions {
  /** Experiment holding the runs that createVersion makes when no runId is given. */
  packagesExperiment?: string;
}

export const DEFAULT_PACKAGES_EXPERIMENT = 'fl-model-packages';
/** Folder under a run's artifacts that holds a version's files (MLflow's own convention is `model`). */
export const MLFLOW_MODEL_SUBDIR = 'model';

// MLflow's documented limits
const REGISTERED_MODELS_PAGE = 1000; // registered-models/search: max threshold 1000
const MODEL_VERSIONS_PAGE = 1000; // model-versions/search: backends may cap lower than 200K; 1000 is safe
const LOG_BATCH_MAX_METRICS = 1000;
const LOG_BATCH_MAX_PARAMS = 100;
const TRANSFER_CONCURRENCY = 4;

const SYSTEM_TAG_PREFIX = 'mlflow.';
const PARENT_RUN_TAG = 'mlflow.parentRunId';
const RUN_NAME_TAG = 'mlflow.runName';

/**
 * Model names: MLflow accepts far more than the built-in backend (users' existing models
 * may have spaces, slashes, ...), so only what cannot work anywhere is refused.
 */
export function validateMlflowModelName(name: unknown): asserts name is string {
  // eslint-disable-next-line no-control-regex
  if (typeof name !== 'string' || !name.trim() || name.length > 256 || /[\x00-\x1f\x7f]/.test(name)) {
    throw new RegistryValidationError('model name', `${JSON.stringify(name)} must be 1-256 characters without control characters`);
  }
}

const isNotFound = (e: unknown) => e instanceof MlflowApiError && e.code === 'NOT_FOUND';

/**
 * ModelRegistry over an MLflow 2.x tracking server: REST API 2.0 for the registry and
 * tracking, the mlflow-artifacts proxy for files. Stateless apart from small caches
 * of experiment ids, so several instances (gateway, coordinators) can share a server.
 */
export class MlflowModelRegistry implements ModelRegistry {
  readonly backend = 'mlflow' as const;
  readonly http: MlflowHttpClient;
  private readonly packagesExperiment: string;
  private readonly experimentIds = new Map<string, string>();
  private readonly experimentNames = new Map<string, string>();
  private lastMetricTs = 0;

  constructor(opts: MlflowModelRegistryOptions) {
    this.http = new MlflowHttpClient(opts);
    this.packagesExperiment = opts.packagesExperiment ?? DEFAULT_PACKAGES_EXPERIMENT;
  }

  // ------------------------------------------------------------------ registered models

  async createModel(name: string, opts: { description?: string; tags?: Record<string, string> } = {}): Promise<void> {
    validateMlflowModelName(name);
    validateTags(opts.tags);
    try {
      await this.http.call('POST', 'registered-models/create', {
        name,
        tags: tagsToWire(opts.tags),
        ...(opts.description !== undefined ? { description: opts.description } : {}),
      });
    } catch (e) {
      // idempotent by contract: an existing model is left as it is
      if (e instanceof MlflowApiError && e.errorCode === 'RESOURCE_ALREADY_EXISTS') return;
      throw e;
    }
  }

  async listModels(): Promise<RegisteredModelSummary[]> {
    const out: RegisteredModelSummary[] = [];
    let page_token: string | undefined;
    do {
      const res = await this.http.call<{ registered_models?: WireRegisteredModel[]; next_page_token?: string }>(
        'GET', 'registered-models/search', { max_results: REGISTERED_MODELS_PAGE, page_token },
      );
      out.push(...(res.registered_models ?? []).map(modelFromWire));
      page_token = res.next_page_token || undefined;
    } while (page_token);
    return out.sort((a, b) => cmp(a.name, b.name));
  }

  // ------------------------------------------------------------------ versions

  async createVersion(
    name: string,
    artifacts: ModelArtifact[],
    opts: { tags?: Record<string, string>; description?: string; runId?: string } = {},
  ): Promise<ModelVersionInfo> {
    validateMlflowModelName(name);
    validateTags(opts.tags);
    validateArtifacts(artifacts);
    // fail before uploading anything
    if (!(await this.modelExists(name))) throw new ModelNotFoundError(name);

    const ownRun = opts.runId === undefined;
    const runId = ownRun
      ? (await this.startRun({ experimentName: this.packagesExperiment, runName: `publish ${name}`, tags: { model_name: name } })).runId
      : opts.runId!;
    let source: string;
    try {
      const run = await this.getWireRun(runId);
      const artifactUri = run.info.artifact_uri;
      if (!artifactUri) throw new RegistryError(`MLflow run ${runId} has no artifact_uri`, 'BACKEND');
      const runRoot = proxyPathOf(artifactUri, `artifact location of run ${runId}`);
      const subdir = ownRun ? MLFLOW_MODEL_SUBDIR : await this.freeSubdir(runRoot);
      await forEachLimited(artifacts, TRANSFER_CONCURRENCY, (a) => this.http.uploadArtifact(`${runRoot}/${subdir}/${a.path}`, a.data));
      source = `${artifactUri.replace(/\/+$/, '')}/${subdir}`;
      if (ownRun) await this.endRun(runId, 'FINISHED');
    } catch (e) {
      if (ownRun) await this.endRun(runId, 'FAILED').catch(() => undefined);
      throw e;
    }

    let created: WireModelVersion;
    try {
      ({ model_version: created } = await this.http.call<{ model_version: WireModelVersion }>(
        'POST',
        'model-versions/create',
        {
          name,
          source,
          run_id: runId,
          tags: tagsToWire(opts.tags),
          ...(opts.description !== undefined ? { description: opts.description } : {}),
        },
        { createsEachTime: true },
      ));
    } catch (e) {
      if (isNotFound(e)) throw new ModelNotFoundError(name); // deleted meanwhile
      throw e;
    }
    return versionFromWire(await this.waitReady(created));
  }

  async getVersion(name: string, version: number): Promise<ModelVersionInfo | null> {
    validateMlflowModelName(name);
    validateVersion(version);
    try {
      const res = await this.http.call<{ model_version: WireModelVersion }>('GET', 'model-versions/get', { name, version: String(version) });
      return versionFromWire(res.model_version);
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  async downloadArtifacts(name: string, version: number): Promise<ModelArtifact[]> {
    validateMlflowModelName(name);
    validateVersion(version);
    let uri: string | undefined;
    try {
      ({ artifact_uri: uri } = await this.http.call<{ artifact_uri?: string }>('GET', 'model-versions/get-download-uri', {
        name,
        version: String(version),
      }));
    } catch (e) {
      if (isNotFound(e)) throw new ModelVersionNotFoundError(name, version);
      throw e;
    }
    if (!uri) throw new RegistryError(`MLflow gave no download URI for '${name}' version ${version}`, 'BACKEND');
    const root = await this.resolveSource(uri, `source of '${name}' version ${version}`);

    const files: { path: string; size?: number }[] = [];
    const walk = async (rel: string): Promise<void> => {
      for (const e of await this.http.listArtifacts(rel ? `${root}/${rel}` : root)) {
        const base = e.path.split('/').pop() ?? ''; // FileInfo.path is the base name; be lenient if a server sends more
        const r = rel ? `${rel}/${base}` : base;
        try {
          validateArtifactPath(r);
        } catch {
          throw new RegistryError(`MLflow listed an unusable artifact path ${JSON.stringify(r)} under ${uri}`, 'BACKEND');
        }
        if (e.is_dir) await walk(r);
        else files.push({ path: r, ...(e.file_size !== undefined ? { size: Number(e.file_size) } : {}) });
      }
    };
    await walk('');
    if (!files.length) throw new RegistryError(`No artifacts found at ${uri} ('${name}' version ${version})`, 'BACKEND');

    const out: ModelArtifact[] = new Array(files.length);
    await forEachLimited(files.map((f, i) => ({ ...f, i })), TRANSFER_CONCURRENCY, async (f) => {
      const data = await this.http.downloadArtifact(`${root}/${f.path}`);
      if (f.size !== undefined && f.size !== data.length) {
        throw new RegistryError(`Artifact ${f.path} of '${name}' version ${version}: got ${data.length} bytes, MLflow listed ${f.size}`, 'BACKEND');
      }
      out[f.i] = { path: f.path, data };
    });
    return out.sort((a, b) => cmp(a.path, b.path));
  }

  async searchVersions(filter: { name?: string; tags?: Record<string, string> } = {}): Promise<ModelVersionInfo[]> {
    if (filter.name !== undefined) validateMlflowModelName(filter.name);
    validateTags(filter.tags, 'tag filter');
    // MLflow's filter grammar has no documented escape for a quote inside a string: such
    // names are filtered here instead. Tags are always filtered here (the file store
    // does not search tags).
    const serverFilter = filter.name !== undefined && !filter.name.includes("'") ? `name='${filter.name}'` : undefined;
    const out: ModelVersionInfo[] = [];
    let page_token: string | undefined;
    do {
      const res = await this.http.call<{ model_versions?: WireModelVersion[]; next_page_token?: string }>(
        'GET', 'model-versions/search', { filter: serverFilter, max_results: MODEL_VERSIONS_PAGE, page_token },
      );
      for (const w of res.model_versions ?? []) {
        const v = versionFromWire(w);
        if (filter.name !== undefined && v.name !== filter.name) continue;
        if (filter.tags && !Object.entries(filter.tags).every(([k, val]) => v.tags[k] === val)) continue;
        out.push(v);
      }
      page_token = res.next_page_token || undefined;
    } while (page_token);
    return out.sort((a, b) => cmp(a.name, b.name) || a.version - b.version);
  }

  async setVersionTag(name: string, version: number, key: string, value: string): Promise<void> {
    validateMlflowModelName(name);
    validateVersion(version);
    validateTags({ [key]: value }, 'tag');
    try {
      await this.http.call('POST', 'model-versions/set-tag', { name, version: String(version), key, value });
    } catch (e) {
      if (isNotFound(e)) throw await this.whichNotFound(name, version);
      throw e;
    }
  }

  async setAlias(name: string, alias: string, version: number): Promise<void> {
    validateMlflowModelName(name);
    validateVersion(version);
    if (typeof alias !== 'string' || !alias) throw new RegistryValidationError('alias', 'must be a non-empty string');
    try {
      await this.http.call('POST', 'registered-models/alias', { name, alias, version: String(version) });
    } catch (e) {
      if (isNotFound(e)) throw await this.whichNotFound(name, version);
      throw e;
    }
  }

  /** Version an alias points at (null if the model or alias does not exist). Not part of ModelRegistry. */
  async getVersionByAlias(name: string, alias: string): Promise<ModelVersionInfo | null> {
    validateMlflowModelName(name);
    try {
      const res = await this.http.call<{ model_version: WireModelVersion }>('GET', 'registered-models/alias', { name, alias });
      return versionFromWire(res.model_version);
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  /** Removes an alias (a no-op if it was not set). Not part of ModelRegistry. */
  async deleteAlias(name: string, alias: string): Promise<void> {
    validateMlflowModelName(name);
    try {
      await this.http.call('DELETE', 'registered-models/alias', { name, alias });
    } catch (e) {
      if (isNotFound(e) && (await this.modelExists(name))) return;
      if (isNotFound(e)) throw new ModelNotFoundError(name);
      throw e;
    }
  }

  // ------------------------------------------------------------------ tracking

  async startRun(opts: { experimentName: string; runName: string; parentRunId?: string; tags?: Record<string, string> }): Promise<{ runId: string }> {
    if (!opts?.experimentName || typeof opts.experimentName !== 'string') {
      throw new RegistryValidationError('experimentName', 'must be a non-empty string');
    }
    if (!opts.runName || typeof opts.runName !== 'string') throw new RegistryValidationError('runName', 'must be a non-empty string');
    validateTags(opts.tags);
    const tags = {
      ...opts.tags,
      [RUN_NAME_TAG]: opts.runName,
      ...(opts.parentRunId ? { [PARENT_RUN_TAG]: opts.parentRunId } : {}),
    };
    const create = async (experimentId: string) =>
      this.http.call<{ run: WireRun }>('POST', 'runs/create', {
        experiment_id: experimentId,
        run_name: opts.runName,
        start_time: Date.now(),
        tags: tagsToWire(tags),
      });
    let res: { run: WireRun };
    try {
      res = await create(await this.experimentId(opts.experimentName));
    } catch (e) {
      if (!isNotFound(e)) throw e;
      // the cached experiment was deleted meanwhile: look it up (or create it) again
      this.experimentIds.delete(opts.experimentName);
      res = await create(await this.experimentId(opts.experimentName));
    }
    return { runId: res.run.info.run_id };
  }

  async logParams(runId: string, params: Record<string, string>): Promise<void> {
    validateTags(params, 'params');
    const entries = Object.entries(params);
    for (let i = 0; i < entries.length; i += LOG_BATCH_MAX_PARAMS) {
      const chunk = entries.slice(i, i + LOG_BATCH_MAX_PARAMS);
      try {
        await this.http.call('POST', 'runs/log-batch', { run_id: runId, params: chunk.map(([key, value]) => ({ key, value })) });
      } catch (e) {
        if (isNotFound(e)) throw new RunNotFoundError(runId);
        // MLflow reports a changed param as INVALID_PARAMETER_VALUE; the interface calls it a conflict
        if (e instanceof MlflowApiError && e.code === 'INVALID_ARGUMENT') throw (await this.paramConflict(runId, params, e)) ?? e;
        throw e;
      }
    }
  }

  async logMetrics(runId: string, metrics: MetricPoint[]): Promise<void> {
    validateMetricPoints(metrics);
    if (!metrics.length) return;
    // MLflow appends rather than overwrites and reports the point with the greatest
    // (step, timestamp, value) as latest: a later write for the same step must carry a
    // strictly later timestamp to win, hence a per-call clock that never repeats.
    const now = (this.lastMetricTs = Math.max(Date.now(), this.lastMetricTs + 1));
    const dedup = new Map<string, MetricPoint>();
    for (const p of metrics) dedup.set(`${p.key}\u0000${p.step}`, p);
    const wire = [...dedup.values()].map((p) => ({
      key: p.key,
      value: metricValueToWire(p.value),
      timestamp: p.timestamp?.getTime() ?? now,
      step: p.step,
    }));
    for (let i = 0; i < wire.length; i += LOG_BATCH_MAX_METRICS) {
      try {
        await this.http.call('POST', 'runs/log-batch', { run_id: runId, metrics: wire.slice(i, i + LOG_BATCH_MAX_METRICS) });
      } catch (e) {
        if (isNotFound(e)) throw new RunNotFoundError(runId);
        throw e;
      }
    }
  }

  async logMetricsOfRuns(entries: { runId: string; metrics: MetricPoint[] }[]): Promise<void> {
    // MLflow's log-batch takes one run: one call per run.
    for (const { runId, metrics } of entries) await this.logMetrics(runId, metrics);
  }

  async endRun(runId: string, status: 'FINISHED' | 'FAILED' | 'KILLED'): Promise<void> {
    validateEndStatus(status);
    try {
      await this.http.call('POST', 'runs/update', { run_id: runId, status, end_time: Date.now() });
    } catch (e) {
      if (isNotFound(e)) throw new RunNotFoundError(runId);
      throw e;
    }
  }

  async getRun(runId: string): Promise<RunInfo | null> {
    let run: WireRun;
    try {
      run = await this.getWireRun(runId);
    } catch (e) {
      if (e instanceof RunNotFoundError) return null;
      throw e;
    }
    const { info, data = {} } = run;
    const allTags = tagsFromWire(data.tags);
    // latest value per key, MLflow's way: greatest (step, timestamp, value)
    const metrics: Record<string, number> = {};
    const best = new Map<string, WireMetric>();
    for (const m of data.metrics ?? []) {
      const prev = best.get(m.key);
      if (!prev || compareMetric(m, prev) > 0) best.set(m.key, m);
    }
    for (const [k, m] of best) metrics[k] = metricValueFromWire(m.value);
    return {
      runId: info.run_id ?? info.run_uuid ?? runId,
      experimentName: await this.experimentName(info.experiment_id),
      runName: info.run_name ?? allTags[RUN_NAME_TAG] ?? '',
      ...(allTags[PARENT_RUN_TAG] ? { parentRunId: allTags[PARENT_RUN_TAG] } : {}),
      status: info.status === 'SCHEDULED' ? 'RUNNING' : info.status,
      params: tagsFromWire(data.params),
      // system tags (mlflow.*) are MLflow's bookkeeping; runName and parentRunId surface them
      tags: Object.fromEntries(Object.entries(allTags).filter(([k]) => !k.startsWith(SYSTEM_TAG_PREFIX))),
      metrics,
      startTime: new Date(toNumber(info.start_time ?? 0, 'start_time')),
      ...(info.end_time ? { endTime: new Date(toNumber(info.end_time, 'end_time')) } : {}),
    };
  }

  async getMetricHistory(runId: string, key: string): Promise<Required<MetricPoint>[]> {
    const all: WireMetric[] = [];
    let page_token: string | undefined;
    try {
      do {
        const res = await this.http.call<{ metrics?: WireMetric[]; next_page_token?: string }>('GET', 'metrics/get-history', {
          run_id: runId,
          metric_key: key,
          page_token,
        });
        all.push(...(res.metrics ?? []));
        page_token = res.next_page_token || undefined;
      } while (page_token);
    } catch (e) {
      if (isNotFound(e)) throw new RunNotFoundError(runId);
      throw e;
    }
    // MLflow keeps every logged point; the interface keeps one per step (the last logged)
    const byStep = new Map<number, WireMetric>();
    for (const m of all) {
      const step = toNumber(m.step ?? 0, 'metric step');
      const prev = byStep.get(step);
      if (!prev || toNumber(m.timestamp, 'metric timestamp') >= toNumber(prev.timestamp, 'metric timestamp')) byStep.set(step, m);
    }
    return [...byStep.entries()]
      .sort(([a], [b]) => a - b)
      .map(([step, m]) => ({ key: m.key, value: metricValueFromWire(m.value), step, timestamp: new Date(toNumber(m.timestamp, 'metric timestamp')) }));
  }

  // ------------------------------------------------------------------ helpers

  private async modelExists(name: string): Promise<boolean> {
    try {
      await this.http.call('GET', 'registered-models/get', { name });
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  }

  /** MLflow answers RESOURCE_DOES_NOT_EXIST for a missing model and a missing version alike. */
  private async whichNotFound(name: string, version: number): Promise<RegistryError> {
    return (await this.modelExists(name)) ? new ModelVersionNotFoundError(name, version) : new ModelNotFoundError(name);
  }

  private async getWireRun(runId: string): Promise<WireRun> {
    if (typeof runId !== 'string' || !runId) throw new RegistryValidationError('runId', 'must be a non-empty string');
    try {
      return (await this.http.call<{ run: WireRun }>('GET', 'runs/get', { run_id: runId })).run;
    } catch (e) {
      if (isNotFound(e)) throw new RunNotFoundError(runId);
      throw e;
    }
  }

  /** Proxy path of a version's files, whatever form its source has. */
  private async resolveSource(uri: string, what: string): Promise<string> {
    const runs = parseRunsUri(uri);
    if (!runs) return proxyPathOf(uri, what);
    // runs:/<id>/<path> is relative to the run's artifact root, which only runs/get knows
    const run = await this.getWireRun(runs.runId);
    const base = run.info.artifact_uri;
    if (!base) throw new RegistryError(`MLflow run ${runs.runId} has no artifact_uri (${what} is ${uri})`, 'BACKEND');
    const root = proxyPathOf(base, `artifact location of run ${runs.runId}`);
    return runs.path ? `${root}/${runs.path}` : root;
  }

  /** `model`, unless an earlier version already used it under this run: then `model-<random>`. */
  private async freeSubdir(runRoot: string): Promise<string> {
    const taken = (await this.http.listArtifacts(`${runRoot}/${MLFLOW_MODEL_SUBDIR}`)).length > 0;
    return taken ? `${MLFLOW_MODEL_SUBDIR}-${randomBytes(4).toString('hex')}` : MLFLOW_MODEL_SUBDIR;
  }

  /** A registration may be asynchronous on some stores: wait for READY (bounded). */
  private async waitReady(v: WireModelVersion): Promise<WireModelVersion> {
    for (let i = 0; v.status === 'PENDING_REGISTRATION' && i < 60; i++) {
      await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** i)));
      v = (await this.http.call<{ model_version: WireModelVersion }>('GET', 'model-versions/get', { name: v.name, version: v.version })).model_version;
    }
    if (v.status === 'FAILED_REGISTRATION') {
      throw new RegistryError(`MLflow failed to register '${v.name}' version ${v.version}: ${v.status_message ?? 'no reason given'}`, 'BACKEND');
    }
    return v;
  }

  private async experimentId(name: string): Promise<string> {
    const cached = this.experimentIds.get(name);
    if (cached) return cached;
    let exp = await this.experimentByName(name);
    if (!exp) {
      try {
        const { experiment_id } = await this.http.call<{ experiment_id: string }>('POST', 'experiments/create', { name });
        exp = { experiment_id, name };
      } catch (e) {
        // another process created it first
        if (!(e instanceof MlflowApiError && e.errorCode === 'RESOURCE_ALREADY_EXISTS')) throw e;
        exp = await this.experimentByName(name);
        if (!exp) throw e;
      }
    }
    if (exp.lifecycle_stage === 'deleted') {
      throw new RegistryError(`MLflow experiment '${name}' is deleted: restore it or use another experiment name`, 'CONFLICT');
    }
    this.experimentIds.set(name, exp.experiment_id);
    this.experimentNames.set(exp.experiment_id, name);
    return exp.experiment_id;
  }

  private async experimentByName(name: string): Promise<WireExperiment | null> {
    try {
      return (await this.http.call<{ experiment: WireExperiment }>('GET', 'experiments/get-by-name', { experiment_name: name })).experiment;
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  private async experimentName(id: string): Promise<string> {
    const cached = this.experimentNames.get(id);
    if (cached !== undefined) return cached;
    const { experiment } = await this.http.call<{ experiment: WireExperiment }>('GET', 'experiments/get', { experiment_id: id });
    this.experimentNames.set(id, experiment.name);
    return experiment.name;
  }

  private async paramConflict(runId: string, params: Record<string, string>, cause: unknown): Promise<RegistryError | null> {
    const run = await this.getRun(runId).catch(() => null);
    for (const [k, v] of Object.entries(params)) {
      if (run && k in run.params && run.params[k] !== v) {
        return new RegistryError(`Param '${k}' of run ${runId} is already '${run.params[k]}'; params cannot be changed (tried '${v}')`, 'CONFLICT', { cause });
      }
    }
    return null;
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareMetric(a: WireMetric, b: WireMetric): number {
  const key = (m: WireMetric) => [toNumber(m.step ?? 0, 'step'), toNumber(m.timestamp, 'timestamp'), metricValueFromWire(m.value)];
  const [x, y] = [key(a), key(b)];
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] > y[i] ? 1 : -1;
  return 0;
}

/** Runs `fn` over `items` with at most `limit` in flight; the first failure rejects (after in-flight ones settle). */
async function forEachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(limit, items.length) }, worker));
  const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (rejected) throw rejected.reason;
}
