import { RegistryError } from '../model-registry';

/** Artifact URIs the backend can read and write: those served by MLflow's artifact proxy. */
export const MLFLOW_ARTIFACTS_SCHEME = 'mlflow-artifacts:';
export const RUNS_SCHEME = 'runs:';

/**
 * The proxy path (relative to the server's artifact root) of an `mlflow-artifacts:` URI:
 * `mlflow-artifacts:/1/abc/artifacts/model` and `mlflow-artifacts://host:5000/1/abc/artifacts/model`
 * both give `1/abc/artifacts/model`. The host form names the server the artifacts were
 * logged through; requests still go to the configured tracking URI (the host in the URI
 * may be an address only reachable from where it was logged).
 * Throws INVALID_ARGUMENT for any other scheme, naming it.
 */
export function proxyPathOf(uri: string, what = 'artifact location'): string {
  if (!uri.startsWith(MLFLOW_ARTIFACTS_SCHEME)) {
    throw new RegistryError(
      `The ${what} ${JSON.stringify(uri)} uses the scheme '${schemeOf(uri)}', which this backend cannot read: ` +
        `only '${MLFLOW_ARTIFACTS_SCHEME}' (MLflow's artifact proxy, server started with --serve-artifacts) ` +
        `and '${RUNS_SCHEME}' sources are supported`,
      'INVALID_ARGUMENT',
    );
  }
  let rest = uri.slice(MLFLOW_ARTIFACTS_SCHEME.length);
  if (rest.startsWith('//')) {
    const slash = rest.indexOf('/', 2);
    rest = slash < 0 ? '' : rest.slice(slash);
  }
  const segs = rest.split('/').filter((s) => s !== '');
  if (segs.some((s) => s === '..' || s === '.')) {
    throw new RegistryError(`The ${what} ${JSON.stringify(uri)} contains '.' or '..' segments`, 'INVALID_ARGUMENT');
  }
  return segs.join('/'); // MLflow keeps these as raw paths (no percent-decoding)
}

/** `runs:/<run_id>/<path>` → { runId, path } (path may be ''); null for other schemes. */
export function parseRunsUri(uri: string): { runId: string; path: string } | null {
  if (!uri.startsWith(RUNS_SCHEME)) return null;
  const segs = uri.slice(RUNS_SCHEME.length).split('/').filter((s) => s !== '');
  if (!segs.length) throw new RegistryError(`The source ${JSON.stringify(uri)} names no run`, 'INVALID_ARGUMENT');
  if (segs.some((s) => s === '..' || s === '.')) {
    throw new RegistryError(`The source ${JSON.stringify(uri)} contains '.' or '..' segments`, 'INVALID_ARGUMENT');
  }
  return { runId: segs[0], path: segs.slice(1).join('/') };
}

export function schemeOf(uri: string): string {
  return /^([A-Za-z][A-Za-z0-9+.-]*:)/.exec(uri)?.[1] ?? '(none: a plain path)';
}

