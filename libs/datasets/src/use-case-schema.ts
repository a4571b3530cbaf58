import { FeatureDefinition, MISSING_STRATEGIES, MissingValues, Normalization, UseCaseDefinition } from './use-case';

/** Use case names travel as routing keys and in USE_CASES lists: the platform's word pattern. */
export const USE_CASE_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** Column names and values are CSV cells: no commas, no line breaks, no surrounding blanks. */
const CELL_PATTERN = /^[^,\r\n]*$/;
const MAX_FEATURES = 100_000;
const MAX_CLASSES = 10_000;
const MAX_HIDDEN_LAYERS = 8;
const MAX_LAYER_WIDTH = 16_384;
export const DEFAULT_MISSING_MARKERS = ['', 'NA', 'NaN', '?'];

export interface UseCaseProblem {
  /** Path of the field at fault, e.g. `features[3].type` */
  field: string;
  reason: string;
}

/** A use case definition that does not follow the schema; names the source and every field at fault. */
export class UseCaseValidationError extends Error {
  constructor(
    readonly source: string,
    readonly problems: UseCaseProblem[],
  ) {
    super(`${source}: invalid use case: ${problems.map((p) => `${p.field}: ${p.reason}`).join('; ')}`);
    this.name = 'UseCaseValidationError';
  }
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const describe = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'string' ? `'${v.slice(0, 40)}'` : typeof v);

/** Collects problems while reading one definition, so that one answer names every field at fault. */
class Reader {
  readonly problems: UseCaseProblem[] = [];

  fail(field: string, reason: string): undefined {
    this.problems.push({ field, reason });
    return undefined;
  }

  object(v: unknown, field: string, allowed: string[]): Json | undefined {
    if (!isObject(v)) return this.fail(field, `must be an object, got ${describe(v)}`);
    for (const k of Object.keys(v)) if (!allowed.includes(k)) this.fail(field ? `${field}.${k}` : k, `unknown field (allowed: ${allowed.join(', ')})`);
    return v;
  }

  string(v: unknown, field: string, opts: { min?: number; max: number; pattern?: RegExp; patternText?: string }): string | undefined {
    if (typeof v !== 'string') return this.fail(field, `must be a string, got ${describe(v)}`);
    if (v.length < (opts.min ?? 1)) return this.fail(field, opts.min === 0 ? 'must be a string' : 'must not be empty');
    if (v.length > opts.max) return this.fail(field, `must be at most ${opts.max} characters`);
    if (opts.pattern && !opts.pattern.test(v)) return this.fail(field, opts.patternText ?? `must match ${opts.pattern}`);
    return v;
  }

  number(v: unknown, field: string, opts: { min?: number; exclusiveMin?: number; max?: number; integer?: boolean }): number | undefined {
    if (typeof v !== 'number' || !Number.isFinite(v)) return this.fail(field, `must be a finite number, got ${describe(v)}`);
    if (opts.integer && !Number.isInteger(v)) return this.fail(field, 'must be an integer');
    if (opts.min !== undefined && v < opts.min) return this.fail(field, `must be at least ${opts.min}`);
    if (opts.exclusiveMin !== undefined && v <= opts.exclusiveMin) return this.fail(field, `must be greater than ${opts.exclusiveMin}`);
    if (opts.max !== undefined && v > opts.max) return this.fail(field, `must be at most ${opts.max}`);
    return v;
  }

  array(v: unknown, field: string, min: number, max: number): unknown[] | undefined {
    if (!Array.isArray(v)) return this.fail(field, `must be an array, got ${describe(v)}`);
    if (v.length < min) return this.fail(field, min === 1 ? 'must not be empty' : `must have at least ${min} entries`);
    if (v.length > max) return this.fail(field, `must have at most ${max} entries`);
    return v;
  }

  /** Distinct non-empty cell strings. */
  cells(v: unknown, field: string, min: number, max: number, what: string): string[] | undefined {
    const list = this.array(v, field, min, max);
    if (!list) return undefined;
    const out: string[] = [];
    const seen = new Set<string>();
    list.forEach((x, i) => {
      const s = this.string(x, `${field}[${i}]`, { max: 200, pattern: CELL_PATTERN, patternText: 'must not hold a comma or a line break' });
      if (s === undefined) return;
      if (s.trim() !== s) return void this.fail(`${field}[${i}]`, 'must not start or end with blanks (CSV cells are trimmed)');
      if (seen.has(s)) return void this.fail(`${field}[${i}]`, `duplicate ${what} '${s}'`);
      seen.add(s);
      out.push(s);
    });
    return out.length === list.length ? out : undefined;
  }
}

function readFeature(r: Reader, v: unknown, field: string): FeatureDefinition | undefined {
  const o = r.object(v, field, ['name', 'type', 'values']);
  if (!o) return undefined;
  const name = r.string(o.name, `${field}.name`, { max: 200, pattern: CELL_PATTERN, patternText: 'must not hold a comma or a line break' });
  if (o.type === 'number') {
    if (o.values !== undefined) r.fail(`${field}.values`, "only a 'categorical' feature lists values");
    return name === undefined ? undefined : { name, type: 'number' };
  }
  if (o.type === 'categorical') {
    const values = r.cells(o.values, `${field}.values`, 1, 1000, 'value');
    return name === undefined || !values ? undefined : { name, type: 'categorical', values };
  }
  return r.fail(`${field}.type`, `must be 'number' or 'categorical', got ${describe(o.type)}`);
}

/** A scalar applies to every number feature; a list has one entry per number feature. */
function readPerFeature(r: Reader, v: unknown, field: string, count: number | undefined, positive: boolean): number[] | undefined {
  const bound = positive ? { exclusiveMin: 0 } : {};
  if (typeof v === 'number') {
    const x = r.number(v, field, bound);
    return x === undefined || count === undefined ? undefined : new Array<number>(count).fill(x);
  }
  const list = r.array(v, field, 0, MAX_FEATURES);
  if (!list) return undefined;
  if (count !== undefined && list.length !== count) return r.fail(field, `must have one entry per number feature (${count}), got ${list.length}`);
  const out = list.map((x, i) => r.number(x, `${field}[${i}]`, bound));
  return out.every((x): x is number => x !== undefined) ? out : undefined;
}

function readNormalization(r: Reader, v: unknown, numberFeatures: number | undefined): Normalization | undefined {
  if (!isObject(v)) return r.fail('normalization', `must be an object, got ${describe(v)}`);
  if (v.method === 'none') {
    r.object(v, 'normalization', ['method']);
    return { method: 'none' };
  }
  if (v.method !== 'standardize') return r.fail('normalization.method', `must be 'standardize' or 'none', got ${describe(v.method)}`);
  if (v.statistics !== undefined) {
    r.object(v, 'normalization', ['method', 'statistics']);
    if (v.statistics !== 'federated') return r.fail('normalization.statistics', `must be 'federated' (or left out, with mean and std given), got ${describe(v.statistics)}`);
    return { method: 'standardize', statistics: 'federated' };
  }
  r.object(v, 'normalization', ['method', 'mean', 'std', 'source']);
  const source = v.source === undefined ? undefined : r.string(v.source, 'normalization.source', { max: 2000 });
  const mean = readPerFeature(r, v.mean, 'normalization.mean', numberFeatures, false);
  const std = readPerFeature(r, v.std, 'normalization.std', numberFeatures, true);
  if (!mean || !std || numberFeatures === undefined) return undefined;
  return source === undefined ? { method: 'standardize', mean, std } : { method: 'standardize', mean, std, source };
}

function readMissing(r: Reader, v: unknown): MissingValues | undefined {
  if (v === undefined) return { strategy: 'reject', markers: [...DEFAULT_MISSING_MARKERS] };
  const o = r.object(v, 'missing_values', ['strategy', 'value', 'markers']);
  if (!o) return undefined;
  const strategy = MISSING_STRATEGIES.find((s) => s === o.strategy);
  if (!strategy) return r.fail('missing_values.strategy', `must be one of ${MISSING_STRATEGIES.join(', ')}, got ${describe(o.strategy)}`);
  let value: number | undefined;
  if (strategy === 'constant') {
    if (o.value === undefined) return r.fail('missing_values.value', "is required with strategy 'constant'");
    value = r.number(o.value, 'missing_values.value', {});
  } else if (o.value !== undefined) r.fail('missing_values.value', "only strategy 'constant' takes a value");
  let markers = [...DEFAULT_MISSING_MARKERS];
  if (o.markers !== undefined) {
    const list = r.array(o.markers, 'missing_values.markers', 0, 100);
    if (!list) return undefined;
    const read = list.map((m, i) => r.string(m, `missing_values.markers[${i}]`, { min: 0, max: 50, pattern: CELL_PATTERN, patternText: 'must not hold a comma or a line break' }));
    if (read.some((m) => m === undefined)) return undefined;
    markers = read as string[];
  }
  return value === undefined ? { strategy, markers } : { strategy, value, markers };
}

/**
 * Checks a use case definition (parsed JSON) against the schema and returns it
 * in its complete form (defaults filled in). Throws UseCaseValidationError
 * naming `source` and every field at fault; unknown fields are errors, so that
 * a misspelt option is not silently ignored.
 */
export function parseUseCase(raw: unknown, source: string): UseCaseDefinition {
  const r = new Reader();
  const o = r.object(raw, '', ['name', 'description', 'features', 'label', 'missing_values', 'normalization', 'model']);
  if (!o) throw new UseCaseValidationError(source, [{ field: 'body', reason: `a use case must be a JSON object, got ${describe(raw)}` }]);
  const name = r.string(o.name, 'name', { max: 64, pattern: USE_CASE_NAME_PATTERN, patternText: 'must be 1-64 letters, digits, _ or -' });
  const description = r.string(o.description, 'description', { max: 2000 });

  let features: FeatureDefinition[] | undefined;
  const featureList = r.array(o.features, 'features', 1, MAX_FEATURES);
  if (featureList) {
    const read = featureList.map((f, i) => readFeature(r, f, `features[${i}]`));
    const seen = new Map<string, number>();
    read.forEach((f, i) => {
      if (!f) return;
      if (seen.has(f.name)) r.fail(`features[${i}].name`, `duplicate column '${f.name}' (also features[${seen.get(f.name)}])`);
      seen.set(f.name, i);
    });
    if (read.every((f): f is FeatureDefinition => f !== undefined)) features = read;
  }

  let label: UseCaseDefinition['label'] | undefined;
  const lo = r.object(o.label, 'label', ['column', 'classes']);
  if (lo) {
    const column = r.string(lo.column, 'label.column', { max: 200, pattern: CELL_PATTERN, patternText: 'must not hold a comma or a line break' });
    if (column !== undefined && features?.some((f) => f.name === column)) r.fail('label.column', `'${column}' is also a feature`);
    const classes = r.cells(lo.classes, 'label.classes', 2, MAX_CLASSES, 'class');
    if (column !== undefined && classes) label = { column, classes };
  }

  const missing = readMissing(r, o.missing_values);
  // With a feature's type in error the count is unknown: the entries are still checked, their number is not.
  const numberFeatures = features?.filter((f) => f.type === 'number').length;
  const normalization = readNormalization(r, o.normalization, numberFeatures);

  let model: UseCaseDefinition['model'] | undefined;
  const mo = r.object(o.model, 'model', ['hidden', 'defaults']);
  if (mo) {
    const hiddenList = r.array(mo.hidden, 'model.hidden', 0, MAX_HIDDEN_LAYERS);
    const hidden = hiddenList?.map((w, i) => r.number(w, `model.hidden[${i}]`, { integer: true, min: 1, max: MAX_LAYER_WIDTH }));
    const d = r.object(mo.defaults, 'model.defaults', ['learning_rate', 'batch_size', 'local_epochs']);
    const lr = d && r.number(d.learning_rate, 'model.defaults.learning_rate', { exclusiveMin: 0, max: 100 });
    const bs = d && r.number(d.batch_size, 'model.defaults.batch_size', { integer: true, min: 1, max: 1_000_000 });
    const ep = d && r.number(d.local_epochs, 'model.defaults.local_epochs', { integer: true, min: 1, max: 10_000 });
    if (hidden?.every((w): w is number => w !== undefined) && lr !== undefined && bs !== undefined && ep !== undefined) {
      model = { hidden, defaults: { learning_rate: lr, batch_size: bs, local_epochs: ep } };
    }
  }

  if (r.problems.length || !name || !description || !features || !label || !missing || !normalization || !model) {
    throw new UseCaseValidationError(source, r.problems.length ? r.problems : [{ field: 'body', reason: 'incomplete definition' }]);
  }
  return { name, description, features, label, missing_values: missing, normalization, model };
}
