/**
 * MLflow REST API 2.0 JSON shapes (protobuf JSON: snake_case, empty repeated fields
 * omitted, model versions as strings, int64 timestamps as ms numbers) and their
 * conversion to the registry's types. Conversions accept numeric strings too, since
 * protobuf JSON may render int64 as strings.
 */
import { ModelVersionInfo, RegisteredModelSummary, RegistryError } from '../model-registry';

export interface WireTag {
  key: string;
  value: string;
}

export interface WireModelVersion {
  name: string;
  version: string;
  creation_timestamp?: number | string;
  last_updated_timestamp?: number | string;
  current_stage?: string;
  description?: string;
  source?: string;
  run_id?: string;
  status?: 'PENDING_REGISTRATION' | 'FAILED_REGISTRATION' | 'READY';
  status_message?: string;
  tags?: WireTag[];
  aliases?: string[];
}

export interface WireRegisteredModel {
  name: string;
  creation_timestamp?: number | string;
  last_updated_timestamp?: number | string;
  description?: string;
  latest_versions?: WireModelVersion[];
  tags?: WireTag[];
  aliases?: { alias: string; version: string }[];
}

export interface WireExperiment {
  experiment_id: string;
  name: string;
  artifact_location?: string;
  lifecycle_stage?: string;
}

export interface WireRunInfo {
  run_id: string;
  run_uuid?: string;
  run_name?: string;
  experiment_id: string;
  user_id?: string;
  status: 'RUNNING' | 'SCHEDULED' | 'FINISHED' | 'FAILED' | 'KILLED';
  start_time?: number | string;
  end_time?: number | string;
  artifact_uri?: string;
  lifecycle_stage?: string;
}

export interface WireMetric {
  key: string;
  /** A number, or "NaN" / "Infinity" / "-Infinity" (protobuf JSON for non-finite doubles). */
  value: number | string;
  timestamp: number | string;
  step?: number | string;
}

export interface WireRun {
  info: WireRunInfo;
  data?: { metrics?: WireMetric[]; params?: WireTag[]; tags?: WireTag[] };
}

export const tagsToWire = (tags: Record<string, string> = {}): WireTag[] =>
  Object.entries(tags).map(([key, value]) => ({ key, value }));

export const tagsFromWire = (tags: WireTag[] = []): Record<string, string> =>
  Object.fromEntries(tags.map((t) => [t.key, t.value ?? '']));

export function toNumber(v: number | string | undefined, what: string): number {
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || Number.isNaN(n)) throw new RegistryError(`MLflow sent an invalid ${what}: ${JSON.stringify(v)}`, 'BACKEND');
  return n;
}

/** Metric values: JSON cannot carry NaN/Infinity as numbers, protobuf JSON spells them as strings. */
export const metricValueToWire = (v: number): number | string => (Number.isFinite(v) ? v : String(v));
export const metricValueFromWire = (v: number | string): number => (typeof v === 'number' ? v : Number(v));

export function versionFromWire(v: WireModelVersion): ModelVersionInfo {
  return {
    name: v.name,
    version: toNumber(v.version, 'model version number'),
    source: v.source ?? '',
    ...(v.run_id ? { runId: v.run_id } : {}),
    tags: tagsFromWire(v.tags),
    // MLflow stores "no description" as empty or absent; the registry's type has it absent
    ...(v.description ? { description: v.description } : {}),
    createdAt: new Date(toNumber(v.creation_timestamp ?? 0, 'creation_timestamp')),
  };
}

export function modelFromWire(m: WireRegisteredModel): RegisteredModelSummary {
  // latest_versions holds the newest READY version per stage: the maximum over stages is the newest overall
  const versions = (m.latest_versions ?? []).map((v) => toNumber(v.version, 'model version number'));
  return {
    name: m.name,
    ...(m.description ? { description: m.description } : {}),
    latestVersion: versions.length ? Math.max(...versions) : null,
    tags: tagsFromWire(m.tags),
  };
}
