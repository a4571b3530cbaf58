import { RegistryError, RegistryErrorCode } from '../model-registry';

export interface CallOptions {
  /**
   * The call makes something new each time (a model version, a run): after a timeout, a 5xx or a
   * lost connection it may have been done already, so it is not sent again (a duplicate version
   * would follow); only when the server surely did not act on it (429, connection refused, a
   * name that does not resolve). Whoever calls decides what to do next: a task's registration
   * looks for the version it may have made before it tries again.
   */
  createsEachTime?: boolean;
}

/** Where the client reports retries; Nest's Logger fits. */
export interface MlflowLogger {
  warn(message: string): void;
  debug?(message: string): void;
}

export interface MlflowHttpOptions {
  /** e.g. http://mlflow:5000 (a path prefix such as /mlflow is kept). Credentials in the URL become basic auth. */
  trackingUri: string;
  username?: string;
  password?: string;
  /** Bearer token; wins over username/password when both are given. */
  token?: string;
  /** Per attempt (each retry gets its own budget). Default 30000. */
  timeoutMs?: number;
  /** Retries after the first attempt, for 5xx, 429, timeouts and connection errors. Default 4. */
  maxRetries?: number;
  /** First backoff; doubles per retry, full jitter, capped at 10 s. Default 250. */
  retryBaseMs?: number;
  logger?: MlflowLogger;
}

export type HttpMethod = 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'PUT';

/**
 * A failed MLflow request. `code` follows the registry's codes (the gateway maps them to
 * HTTP); `errorCode` is MLflow's own (`RESOURCE_DOES_NOT_EXIST`, ...) when the server
 * answered with its JSON error shape.
 */
export class MlflowApiError extends RegistryError {
  constructor(
    message: string,
    code: RegistryErrorCode,
    readonly method: string,
    readonly url: string,
    readonly status?: number,
    readonly errorCode?: string,
    readonly mlflowMessage?: string,
    options?: { cause?: unknown },
  ) {
    super(message, code, options);
    this.name = 'MlflowApiError';
  }
}

const ERROR_CODES: Record<string, RegistryErrorCode> = {
  RESOURCE_DOES_NOT_EXIST: 'NOT_FOUND',
  RESOURCE_ALREADY_EXISTS: 'CONFLICT',
  INVALID_PARAMETER_VALUE: 'INVALID_ARGUMENT',
};

const MAX_BACKOFF_MS = 10_000;

/** One entry of an mlflow-artifacts listing (MLflow's FileInfo: `path` is the entry's base name). */
export interface MlflowFileInfo {
  path: string;
  is_dir?: boolean;
  file_size?: number | string;
}

/**
 * JSON-over-HTTP client for MLflow's REST API 2.0 (`/api/2.0/mlflow/...`) and the
 * artifact proxy (`/api/2.0/mlflow-artifacts/...`). Every failure becomes an
 * MlflowApiError whose message names the method and the URL (never credentials).
 */
export class MlflowHttpClient {
  /** Base URL without credentials or trailing slash; safe to print. */
  readonly baseUrl: string;
  private readonly auth?: string;
  private readonly timeoutMs: number;
  private readonly maxRetries: number;
  private readonly retryBaseMs: number;
  private readonly logger?: MlflowLogger;

  constructor(opts: MlflowHttpOptions) {
    let url: URL;
    try {
      url = new URL(opts.trackingUri);
    } catch {
      throw new RegistryError(`MLflow tracking URI is not a URL: ${JSON.stringify(redact(opts.trackingUri))}`, 'INVALID_ARGUMENT');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new RegistryError(`MLflow tracking URI must be http(s), got '${url.protocol}'`, 'INVALID_ARGUMENT');
    }
    // fetch refuses URLs with credentials: move them into the Authorization header
    const username = opts.username ?? (url.username ? decodeURIComponent(url.username) : undefined);
    const password = opts.password ?? (url.password ? decodeURIComponent(url.password) : undefined);
    url.username = '';
    url.password = '';
    url.search = '';
    url.hash = '';
    this.baseUrl = url.toString().replace(/\/+$/, '');
    if (opts.token) this.auth = `Bearer ${opts.token}`;
    else if (username !== undefined) this.auth = `Basic ${Buffer.from(`${username}:${password ?? ''}`).toString('base64')}`;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.maxRetries = opts.maxRetries ?? 4;
    this.retryBaseMs = opts.retryBaseMs ?? 250;
    this.logger = opts.logger;
  }

  /**
   * Calls `/api/2.0/mlflow/<endpoint>`: GET sends `params` as the query string, other
   * methods as a JSON body (MLflow reads DELETE bodies too). Resolves to the parsed JSON.
   */
  async call<T = Record<string, unknown>>(method: Exclude<HttpMethod, 'PUT'>, endpoint: string, params: object = {}, opts: CallOptions = {}): Promise<T> {
    if (method === 'GET') {
      const res = await this.send(method, `/api/2.0/mlflow/${endpoint}${queryString(params)}`, {});
      return parseJson<T>(res, method);
    }
    const res = await this.send(method, `/api/2.0/mlflow/${endpoint}`, {
      body: JSON.stringify(params),
      headers: { 'content-type': 'application/json' },
      createsEachTime: opts.createsEachTime,
    });
    return parseJson<T>(res, method);
  }

  /** PUT raw bytes to the artifact proxy; `path` is relative to the server's artifact root. */
  async uploadArtifact(path: string, data: Buffer): Promise<void> {
    await this.send('PUT', `/api/2.0/mlflow-artifacts/artifacts/${encodePath(path)}`, {
      body: data,
      headers: { 'content-type': 'application/octet-stream' },
    });
  }

  async downloadArtifact(path: string): Promise<Buffer> {
    return (await this.send('GET', `/api/2.0/mlflow-artifacts/artifacts/${encodePath(path)}`, {})).body;
  }

  /** Direct children of `path`; an empty or missing folder lists as []. */
  async listArtifacts(path: string): Promise<MlflowFileInfo[]> {
    const res = await this.send('GET', `/api/2.0/mlflow-artifacts/artifacts${queryString({ path })}`, {});
    const json = parseJson<{ files?: MlflowFileInfo[] }>(res, 'GET');
    return json.files ?? []; // protobuf JSON omits empty repeated fields
  }

  // ------------------------------------------------------------------ transport

  private async send(
    method: HttpMethod,
    pathAndQuery: string,
    init: { body?: string | Buffer; headers?: Record<string, string>; createsEachTime?: boolean },
  ): Promise<{ status: number; body: Buffer; url: string }> {
    const url = this.baseUrl + pathAndQuery;
    const headers: Record<string, string> = { accept: 'application/json', ...init.headers };
    if (this.auth) headers.authorization = this.auth;
    for (let attempt = 0; ; attempt++) {
      let failure: MlflowApiError;
      let retryable: boolean;
      try {
        const res = await fetch(url, {
          method,
          headers,
          body: init.body,
          signal: AbortSignal.timeout(this.timeoutMs),
          redirect: 'follow',
        });
        const body = Buffer.from(await res.arrayBuffer());
        if (res.ok) return { status: res.status, body, url };
        failure = httpError(method, url, res.status, res.statusText, res.headers.get('content-type'), body);
        // A call that creates something new each time is sent again only when the server surely did not act on it (429).
        retryable = init.createsEachTime ? res.status === 429 : res.status >= 500 || res.status === 429;
      } catch (err) {
        failure = transportError(method, url, err, this.timeoutMs);
        retryable = !init.createsEachTime || neverSent(err);
      }
      if (!retryable || attempt >= this.maxRetries) {
        if (retryable && attempt > 0) {
          throw new MlflowApiError(
            `${failure.message} (gave up after ${attempt + 1} attempts)`,
            failure.code, failure.method, failure.url, failure.status, failure.errorCode, failure.mlflowMessage,
            { cause: failure.cause },
          );
        }
        throw failure;
      }
      // full jitter: spreads the retries of many callers after an outage
      const delay = Math.random() * Math.min(MAX_BACKOFF_MS, this.retryBaseMs * 2 ** attempt);
      this.logger?.warn(`${failure.message}; retry ${attempt + 1}/${this.maxRetries} in ${Math.round(delay)} ms`);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

// ------------------------------------------------------------------ helpers

function httpError(method: string, url: string, status: number, statusText: string, contentType: string | null, body: Buffer): MlflowApiError {
  const text = body.toString('utf8');
  let json: { error_code?: unknown; message?: unknown } | undefined;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (json && typeof json.error_code === 'string') {
    const msg = typeof json.message === 'string' ? json.message : '';
    return new MlflowApiError(
      `MLflow ${method} ${url} failed: HTTP ${status} ${json.error_code}: ${msg}`,
      ERROR_CODES[json.error_code] ?? 'BACKEND',
      method, url, status, json.error_code, msg,
    );
  }
  // not MLflow's error shape: an HTML page from Flask/a proxy (unknown endpoint, wrong method, auth, gateway)
  const title = /<title>([^<]*)<\/title>/i.exec(text)?.[1]?.trim();
  const snippet = title ?? text.replace(/\s+/g, ' ').trim().slice(0, 200);
  const kind = contentType?.includes('html') || title ? 'an HTML page' : 'a non-JSON body';
  let hint = '';
  if (status === 404 || status === 405) hint = ' (not an MLflow 2.x REST endpoint: check MLFLOW_TRACKING_URI, and that the server serves artifacts)';
  if (status === 401 || status === 403) hint = ' (check the MLflow credentials)';
  return new MlflowApiError(
    `MLflow ${method} ${url} failed: HTTP ${status} ${statusText}, ${kind}${snippet ? `: ${JSON.stringify(snippet)}` : ''}${hint}`,
    'BACKEND', method, url, status,
  );
}

/** Connection failures that happen before a request is sent: nothing reached the server. */
function neverSent(err: any): boolean {
  return ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN'].includes(err?.cause?.code);
}

function transportError(method: string, url: string, err: any, timeoutMs: number): MlflowApiError {
  if (err?.name === 'TimeoutError' || err?.name === 'AbortError') {
    return new MlflowApiError(`MLflow ${method} ${url} failed: no answer within ${timeoutMs} ms`, 'BACKEND', method, url, undefined, undefined, undefined, { cause: err });
  }
  // undici puts the socket error (ECONNREFUSED, ENOTFOUND, ...) in `cause`
  const cause = err?.cause;
  const detail = cause?.code ? `${cause.code}${cause.message ? ` (${cause.message})` : ''}` : (cause?.message ?? err?.message ?? String(err));
  return new MlflowApiError(`MLflow ${method} ${url} failed: server unreachable: ${detail}`, 'BACKEND', method, url, undefined, undefined, undefined, { cause: err });
}

function parseJson<T>(res: { body: Buffer; url: string; status: number }, method: string): T {
  const text = res.body.toString('utf8');
  if (!text.trim()) return {} as T;
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new MlflowApiError(
      `MLflow ${method} ${res.url} answered HTTP ${res.status} with a body that is not JSON: ${JSON.stringify(text.slice(0, 200))}`,
      'BACKEND', method, res.url, res.status, undefined, undefined, { cause: err },
    );
  }
}

/** `?a=1&b=x&b=y`, skipping undefined; arrays repeat the key (MLflow's repeated fields). */
export function queryString(params: object): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null) continue;
    for (const item of Array.isArray(v) ? v : [v]) q.append(k, String(item));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** Percent-encodes each segment of a relative POSIX path. */
export function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

function redact(uri: string): string {
  return uri.replace(/\/\/[^@/]*@/, '//***@');
}
