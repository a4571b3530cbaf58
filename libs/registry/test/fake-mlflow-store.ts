/**
 * TEST DOUBLE. In-memory state and endpoint logic of an MLflow 2.x tracking server,
 * limited to the endpoints MlflowModelRegistry uses, answering with MLflow's documented
 * JSON shapes: protobuf JSON (snake_case, empty repeated fields and unset fields
 * omitted), string model versions, ms timestamps as numbers, `{}` for writes.
 * Errors are thrown as FakeMlflowError and rendered by fake-mlflow-server.ts.
 * Imports only node: modules so that it compiles on its own (see fake-mlflow-main.ts).
 */
import { randomUUID } from 'node:crypto';

export class FakeMlflowError extends Error {
  constructor(
    readonly errorCode: 'RESOURCE_DOES_NOT_EXIST' | 'RESOURCE_ALREADY_EXISTS' | 'INVALID_PARAMETER_VALUE',
    message: string,
  ) {
    super(message);
  }
  /** MLflow's HTTP status per error code. */
  get status(): number {
    return this.errorCode === 'RESOURCE_DOES_NOT_EXIST' ? 404 : 400;
  }
}

type Params = Record<string, any>;
type Tag = { key: string; value: string };

export interface FakeExperiment {
  experiment_id: string;
  name: string;
  artifact_location: string;
  lifecycle_stage: 'active' | 'deleted';
  creation_time: number;
  last_update_time: number;
}
export interface FakeMetric {
  key: string;
  value: number;
  timestamp: number;
  step: number;
}
export interface FakeRun {
  info: {
    run_id: string;
    run_uuid: string;
    run_name: string;
    experiment_id: string;
    user_id: string;
    status: string;
    start_time: number;
    end_time?: number;
    artifact_uri: string;
    lifecycle_stage: string;
  };
  params: Map<string, string>;
  tags: Map<string, string>;
  metrics: FakeMetric[];
}
export interface FakeModelVersion {
  name: string;
  version: number;
  creation_timestamp: number;
  last_updated_timestamp: number;
  description?: string;
  source: string;
  run_id?: string;
  tags: Map<string, string>;
}
export interface FakeRegisteredModel {
  name: string;
  creation_timestamp: number;
  last_updated_timestamp: number;
  description?: string;
  tags: Map<string, string>;
  aliases: Map<string, number>;
  versions: FakeModelVersion[];
}

const required = (p: Params, field: string): string => {
  const v = p[field];
  if (v === undefined || v === null || v === '') {
    throw new FakeMlflowError('INVALID_PARAMETER_VALUE', `Missing value for required parameter '${field}'. See the API docs for more information about request parameters.`);
  }
  return String(v);
};
const tagList = (m: Map<string, string>): Tag[] => [...m].map(([key, value]) => ({ key, value }));
/** protobuf JSON leaves out unset fields and empty repeated fields */
const compact = <T extends object>(o: T): T =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && !(Array.isArray(v) && v.length === 0))) as T;
const wireValue = (v: number): number | string => (Number.isFinite(v) ? v : String(v));

export class FakeMlflowStore {
  readonly experiments = new Map<string, FakeExperiment>();
  readonly runs = new Map<string, FakeRun>();
  readonly models = new Map<string, FakeRegisteredModel>();
  /** Files behind the artifact proxy, by path relative to the artifact root. */
  readonly artifacts = new Map<string, Buffer>();
  private nextExperimentId = 1;

  constructor(private readonly maxPageSize = Infinity) {
    // every MLflow server has the Default experiment, id 0
    this.addExperiment('Default', '0');
  }

  // ------------------------------------------------------------------ experiments

  private addExperiment(name: string, id = String(this.nextExperimentId++)): FakeExperiment {
    const now = Date.now();
    const e: FakeExperiment = { experiment_id: id, name, artifact_location: `mlflow-artifacts:/${id}`, lifecycle_stage: 'active', creation_time: now, last_update_time: now };
    this.experiments.set(id, e);
    return e;
  }

  createExperiment(p: Params) {
    const name = required(p, 'name');
    if ([...this.experiments.values()].some((e) => e.name === name)) {
      throw new FakeMlflowError('RESOURCE_ALREADY_EXISTS', `Experiment '${name}' already exists.`);
    }
    return { experiment_id: this.addExperiment(name).experiment_id };
  }

  getExperimentByName(p: Params) {
    const name = required(p, 'experiment_name');
    const e = [...this.experiments.values()].find((x) => x.name === name);
    if (!e) throw new FakeMlflowError('RESOURCE_DOES_NOT_EXIST', `Could not find experiment with name '${name}'`);
    return { experiment: e };
  }

  getExperiment(p: Params) {
    const id = required(p, 'experiment_id');
    const e = this.experiments.get(id);
    if (!e) throw new FakeMlflowError('RESOURCE_DOES_NOT_EXIST', `No Experiment with id=${id} exists`);
    return { experiment: e };
  }

  // ------------------------------------------------------------------ runs

  private run(id: string): FakeRun {
    const r = this.runs.get(id);
    if (!r) throw new FakeMlflowError('RESOURCE_DOES_NOT_EXIST', `Run with id=${id} not found`);
    return r;
  }

  private runWire(r: FakeRun) {
    // runs/get reports the latest point per key: greatest (step, timestamp, value)
    const latest = new Map<string, FakeMetric>();
    for (const m of r.metrics) {
      const p = latest.get(m.key);
      if (!p || m.step > p.step || (m.step === p.step && (m.timestamp > p.timestamp || (m.timestamp === p.timestamp && m.value > p.value)))) latest.set(m.key, m);
    }
    return {
      info: compact({ ...r.info }),
      data: compact({
        metrics: [...latest.values()].map((m) => ({ ...m, value: wireValue(m.value) })),
        params: tagList(r.params),
        tags: tagList(r.tags),
      }),
      inputs: {},
    };
  }

  createRun(p: Params) {
    const experimentId = p.experiment_id === undefined ? '0' : String(p.experiment_id);
    const exp = this.experiments.get(experimentId);
    if (!exp) throw new FakeMlflowError('RESOURCE_DOES_NOT_EXIST', `No Experiment with id=${experimentId} exists`);
    const tags = new Map<string, string>(((p.tags ?? []) as Tag[]).map((t) => [t.key, t.value]));
    const tagName = tags.get('mlflow.runName');
    if (p.run_name && tagName && p.run_name !== tagName) {
      throw new FakeMlflowError('INVALID_PARAMETER_VALUE', `Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values (run_name='${p.run_name}', mlflow.runName='${tagName}').`);
    }
    const runName = p.run_name || tagName || `run-${Math.floor(Math.random() * 1000)}`;
    tags.set('mlflow.runName', runName);
    const id = randomUUID().replace(/-/g, '');
    const r: FakeRun = {
      info: {
        run_id: id, run_uuid: id, run_name: runName, experiment_id: experimentId, user_id: p.user_id ?? '',
        status: 'RUNNING', start_time: Number(p.start_time ?? Date.now()),
        artifact_uri: `${exp.artifact_location}/${id}/artifacts`, lifecycle_stage: 'active',
      },
      params: new Map(),
      tags,
      metrics: [],
    };
    this.runs.set(id, r);
    return { run: this.runWire(r) };
  }

  getRun(p: Params) {
    return { run: this.runWire(this.run(required(p, 'run_id'))) };
  }

  updateRun(p: Params) {
    const r = this.run(required(p, 'run_id'));
    if (p.status !== undefined) {
      if (!['RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED'].includes(p.status)) {
        throw new FakeMlflowError('INVALID_PARAMETER_VALUE', `Invalid value ${JSON.stringify(p.status)} for parameter 'status' supplied.`);
      }
      r.info.status = p.status;
    }
    if (p.end_time !== undefined) r.info.end_time = Number(p.end_time);
    if (p.run_name) {
      r.info.run_name = p.run_name;
      r.tags.set('mlflow.runName', p.run_name);
    }
    return { run_info: compact({ ...r.info }) };
  }

  logBatch(p: Params) {
    const metrics: any[] = p.metrics ?? [];
    const params: Tag[] = p.params ?? [];
    const tags: Tag[] = p.tags ?? [];
    // MLflow's documented request limits
    if (metrics.length > 1000) throw new FakeMlflowError('INVALID_PARAMETER_VALUE', `A batch logging request can contain at most 1000 metrics. Got ${metrics.length} metrics. Please split up metrics across multiple requests and try again.`);
    if (params.length > 100) throw new FakeMlflowError('INVALID_PARAMETER_VALUE', `A batch logging request can contain at most 100 params. Got ${params.length} params. Please split up params across multiple requests and try again.`);
    if (tags.length > 100) throw new FakeMlflowError('INVALID_PARAMETER_VALUE', `A batch logging request can contain at most 100 tags. Got ${tags.length} tags. Please split up tags across multiple requests and try again.`);
    if (metrics.length + params.length + tags.length > 1000) throw new FakeMlflowError('INVALID_PARAMETER_VALUE', 'A batch logging request can contain at most 1000 metrics, params, and tags in total.');
    const r = this.run(required(p, 'run_id'));
    for (const m of metrics) {
      const value = typeof m.value === 'number' ? m.value : ['NaN', 'Infinity', '-Infinity'].includes(m.value) ? Number(m.value) : undefined;
      if (typeof m.key !== 'string' || !m.key || value === undefined || m.timestamp === undefined) {
        throw new FakeMlflowError('INVALID_PARAMETER_VALUE', `Invalid metric ${JSON.stringify(m)}: key, value and timestamp are required`);
      }
    }
    for (const { key, value } of params) {
      const old = r.params.get(key);
      if (old !== undefined && old !== value) {
        throw new FakeMlflowError('INVALID_PARAMETER_VALUE', `Changing param values is not allowed. Param with key='${key}' was already logged with value='${old}' for run ID='${r.info.run_id}'. Attempted logging new value '${value}'.`);
      }
    }
    for (const { key, value } of params) r.params.set(key, value);
    for (const { key, value } of tags) r.tags.set(key, value);
    // metrics are appended, never overwritten
    for (const m of metrics) r.metrics.push({ key: m.key, value: typeof m.value === 'number' ? m.value : Number(m.value), timestamp: Number(m.timestamp), step: Number(m.step ?? 0) });
    return {};
  }

  getMetricHistory(p: Params) {
    const r = this.run(required(p, 'run_id'));
    const key = required(p, 'metric_key');
    const all = r.metrics.filter((m) => m.key === key).map((m) => ({ ...m, value: wireValue(m.value) }));
    const { items, next_page_token } = this.page(all, p, 25_000, 25_000);
    return compact({ metrics: items, next_page_token });
  }

  // ------------------------------------------------------------------ registered models

  private model(name: string): FakeRegisteredModel {
    const m = this.models.get(name);
    if (!m) throw new FakeMlflowError('RESOURCE_DOES_NOT_EXIST', `Registered Model with name=${name} not found`);
    return m;
  }

  private version(name: string, version: unknown): FakeModelVersion {
    const m = this.model(name);
    const v = m.versions.find((x) => String(x.version) === String(version));
    if (!v) throw new FakeMlflowError('RESOURCE_DOES_NOT_EXIST', `Model Version (name=${name}, version=${version}) not found`);
    return v;
  }

  private versionWire(v: FakeModelVersion) {
    const m = this.models.get(v.name)!;
    return compact({
      name: v.name,
      version: String(v.version),
      creation_timestamp: v.creation_timestamp,
      last_updated_timestamp: v.last_updated_timestamp,
      current_stage: 'None',
      description: v.description,
      source: v.source,
      run_id: v.run_id,
      status: 'READY',
      tags: tagList(v.tags),
      aliases: [...m.aliases].filter(([, n]) => n === v.version).map(([a]) => a),
    });
  }

  private modelWire(m: FakeRegisteredModel) {
    // every version is in stage "None": latest_versions has the newest one
    const newest = m.versions[m.versions.length - 1];
    return compact({
      name: m.name,
      creation_timestamp: m.creation_timestamp,
      last_updated_timestamp: m.last_updated_timestamp,
      description: m.description,
      latest_versions: newest ? [this.versionWire(newest)] : [],
      tags: tagList(m.tags),
      aliases: [...m.aliases].map(([alias, version]) => ({ alias, version: String(version) })),
    });
  }

  createRegisteredModel(p: Params) {
    const name = required(p, 'name');
    if (this.models.has(name)) throw new FakeMlflowError('RESOURCE_ALREADY_EXISTS', `Registered Model (name=${name}) already exists.`);
    const now = Date.now();
    const m: FakeRegisteredModel = {
      name, creation_timestamp: now, last_updated_timestamp: now, description: p.description || undefined,
      tags: new Map(((p.tags ?? []) as Tag[]).map((t) => [t.key, t.value])), aliases: new Map(), versions: [],
    };
    this.models.set(name, m);
    return { registered_model: this.modelWire(m) };
  }

  getRegisteredModel(p: Params) {
    return { registered_model: this.modelWire(this.model(required(p, 'name'))) };
  }

  searchRegisteredModels(p: Params) {
    const filter = String(p.filter ?? '').trim();
    let all = [...this.models.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    if (filter) {
      const eq = /^name\s*=\s*'([^']*)'$/.exec(filter);
      if (!eq) throw new FakeMlflowError('INVALID_PARAMETER_VALUE', `Invalid filter '${filter}' (this fake supports name='...')`);
      all = all.filter((m) => m.name === eq[1]);
    }
    const { items, next_page_token } = this.page(all, p, 100, 1000);
    return compact({ registered_models: items.map((m) => this.modelWire(m)), next_page_token });
  }

  createModelVersion(p: Params) {
    const name = required(p, 'name');
    const source = required(p, 'source');
    const m = this.model(name);
    const now = Date.now();
    const v: FakeModelVersion = {
      name, version: (m.versions[m.versions.length - 1]?.version ?? 0) + 1, creation_timestamp: now, last_updated_timestamp: now,
      description: p.description || undefined, source, run_id: p.run_id || undefined,
      tags: new Map(((p.tags ?? []) as Tag[]).map((t) => [t.key, t.value])),
    };
    m.versions.push(v);
    m.last_updated_timestamp = now;
    return { model_version: this.versionWire(v) };
  }

  getModelVersion(p: Params) {
    return { model_version: this.versionWire(this.version(required(p, 'name'), required(p, 'version'))) };
  }

  searchModelVersions(p: Params) {
    const filter = String(p.filter ?? '').trim();
    let all = [...this.models.values()].flatMap((m) => m.versions);
    if (filter) {
      const eq = /^(name|run_id)\s*=\s*(?:'([^']*)'|"([^"]*)")$/.exec(filter);
      if (!eq) throw new FakeMlflowError('INVALID_PARAMETER_VALUE', `Invalid filter '${filter}' (this fake supports name='...' and run_id='...')`);
      const want = eq[2] ?? eq[3];
      all = all.filter((v) => (eq[1] === 'name' ? v.name : v.run_id) === want);
    }
    // MLflow's documented tiebreak: name ASC, then version DESC
    all.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : b.version - a.version));
    const { items, next_page_token } = this.page(all, p, 200_000, 200_000);
    return compact({ model_versions: items.map((v) => this.versionWire(v)), next_page_token });
  }

  setModelVersionTag(p: Params) {
    const v = this.version(required(p, 'name'), required(p, 'version'));
    v.tags.set(required(p, 'key'), String(p.value ?? ''));
    v.last_updated_timestamp = Date.now();
    return {};
  }

  getDownloadUri(p: Params) {
    // the source as stored: a runs:/ source comes back unresolved
    return { artifact_uri: this.version(required(p, 'name'), required(p, 'version')).source };
  }

  setAlias(p: Params) {
    const name = required(p, 'name');
    const alias = required(p, 'alias');
    if (alias.toLowerCase() === 'latest' || /^v\d+$/i.test(alias)) {
      throw new FakeMlflowError('INVALID_PARAMETER_VALUE', `'${alias}' alias name (case insensitive) is reserved.`);
    }
    const v = this.version(name, required(p, 'version'));
    this.model(name).aliases.set(alias, v.version);
    return {};
  }

  getVersionByAlias(p: Params) {
    const name = required(p, 'name');
    const alias = required(p, 'alias');
    const n = this.model(name).aliases.get(alias);
    if (n === undefined) throw new FakeMlflowError('RESOURCE_DOES_NOT_EXIST', `Registered model alias ${alias} not found.`);
    return { model_version: this.versionWire(this.version(name, n)) };
  }

  deleteAlias(p: Params) {
    this.model(required(p, 'name')).aliases.delete(required(p, 'alias'));
    return {};
  }

  // ------------------------------------------------------------------ artifact proxy

  listArtifacts(dir: string) {
    const prefix = dir ? `${dir.replace(/\/+$/, '')}/` : '';
    const entries = new Map<string, { path: string; is_dir: boolean; file_size?: number }>();
    for (const [p, data] of this.artifacts) {
      if (!p.startsWith(prefix)) continue;
      const [head, ...rest] = p.slice(prefix.length).split('/');
      // FileInfo.path is the base name in the proxy's listing
      entries.set(head, rest.length ? { path: head, is_dir: true } : { path: head, is_dir: false, file_size: data.length });
    }
    return compact({ files: [...entries.values()].sort((a, b) => (a.path < b.path ? -1 : 1)) });
  }

  // ------------------------------------------------------------------ pagination

  /** Opaque page tokens (base64 of an offset); `maxPageSize` lets a test force small pages. */
  private page<T>(all: T[], p: Params, dflt: number, max: number): { items: T[]; next_page_token?: string } {
    const requested = p.max_results === undefined ? dflt : Number(p.max_results);
    if (!Number.isInteger(requested) || requested < 1 || requested > max) {
      throw new FakeMlflowError('INVALID_PARAMETER_VALUE', `Invalid value for max_results. It must be at most ${max}, but got value ${p.max_results}`);
    }
    let offset = 0;
    if (p.page_token) {
      offset = Number(Buffer.from(String(p.page_token), 'base64').toString('utf8').replace(/^offset:/, ''));
      if (!Number.isInteger(offset) || offset < 0) throw new FakeMlflowError('INVALID_PARAMETER_VALUE', `Invalid page token '${p.page_token}'`);
    }
    const size = Math.min(requested, this.maxPageSize);
    const items = all.slice(offset, offset + size);
    const next = offset + size < all.length ? Buffer.from(`offset:${offset + size}`).toString('base64') : undefined;
    return { items, next_page_token: next };
  }
}
