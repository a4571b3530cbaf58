/**
 * TEST DOUBLE of an MLflow 2.x tracking server (node:http, in memory) for unit and e2e
 * tests. Never import it from production code: it lives under test/, which the build
 * excludes.
 *
 * HTTP behaviour copied from MLflow's Flask server: GET reads the query string, every
 * other method (DELETE included) a JSON body; errors are `{"error_code", "message"}`
 * with 404 / 400; an unknown route is Flask's HTML 404 page, a known route with the
 * wrong method its HTML 405 page; basic-auth failures are a plain-text 401.
 * Test hooks: failNext (answer the next N requests with a status), delayNext (hold the
 * next request), requests (what was called), state (the store).
 */
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { FakeMlflowError, FakeMlflowStore } from './fake-mlflow-store';

export interface FakeMlflowOptions {
  port?: number;
  host?: string;
  requireAuth?: { username: string; password: string } | { token: string };
  /** Caps every page (as servers with lower thresholds do), so that pagination can be tested. */
  maxPageSize?: number;
}

export interface FakeMlflow {
  url: string;
  close(): Promise<void>;
  /**
   * The next `count` requests get `status` (default 503) before reaching any endpoint;
   * with `match`, only requests whose path contains it count (e.g. 'model-versions/create').
   */
  failNext(count: number, status?: number, match?: string): void;
  /**
   * The next request waits `ms` before being handled (then handled as usual, even if its client
   * gave up meanwhile); with `match`, the next one whose path contains it.
   */
  delayNext(ms: number, match?: string): void;
  /** Every request in arrival order; `status` is set once answered. */
  requests: { method: string; path: string; query: string; status?: number }[];
  state: FakeMlflowStore;
}

type Handler = (params: Record<string, any>) => object;

const API = '/api/2.0/mlflow/';
const ARTIFACTS = '/api/2.0/mlflow-artifacts/artifacts';

function routes(s: FakeMlflowStore): Record<string, Partial<Record<string, Handler>>> {
  return {
    'experiments/create': { POST: (p) => s.createExperiment(p) },
    'experiments/get': { GET: (p) => s.getExperiment(p) },
    'experiments/get-by-name': { GET: (p) => s.getExperimentByName(p) },
    'runs/create': { POST: (p) => s.createRun(p) },
    'runs/get': { GET: (p) => s.getRun(p) },
    'runs/update': { POST: (p) => s.updateRun(p) },
    'runs/log-batch': { POST: (p) => s.logBatch(p) },
    'metrics/get-history': { GET: (p) => s.getMetricHistory(p) },
    'registered-models/create': { POST: (p) => s.createRegisteredModel(p) },
    'registered-models/get': { GET: (p) => s.getRegisteredModel(p) },
    'registered-models/search': { GET: (p) => s.searchRegisteredModels(p) },
    'registered-models/alias': { POST: (p) => s.setAlias(p), GET: (p) => s.getVersionByAlias(p), DELETE: (p) => s.deleteAlias(p) },
    'model-versions/create': { POST: (p) => s.createModelVersion(p) },
    'model-versions/get': { GET: (p) => s.getModelVersion(p) },
    'model-versions/search': { GET: (p) => s.searchModelVersions(p) },
    'model-versions/set-tag': { POST: (p) => s.setModelVersionTag(p) },
    'model-versions/get-download-uri': { GET: (p) => s.getDownloadUri(p) },
  };
}

const html = (status: number, title: string, text: string) =>
  `<!doctype html>\n<html lang=en>\n<title>${status} ${title}</title>\n<h1>${title}</h1>\n<p>${text}</p>\n`;

export async function startFakeMlflow(opts: FakeMlflowOptions = {}): Promise<FakeMlflow> {
  const state = new FakeMlflowStore(opts.maxPageSize);
  const table = routes(state);
  const requests: FakeMlflow['requests'] = [];
  let failures: { count: number; status: number; match?: string } = { count: 0, status: 503 };
  const delays: { ms: number; match?: string }[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const answered = new WeakMap<http.ServerResponse, FakeMlflow['requests'][number]>();
  const send = (res: http.ServerResponse, status: number, type: string, body: string | Buffer) => {
    const entry = answered.get(res);
    if (entry) entry.status = status;
    if (res.destroyed) return; // the client gave up (timeout test)
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  const json = (res: http.ServerResponse, status: number, body: object) => send(res, status, 'application/json', JSON.stringify(body));
  const notFound = (res: http.ServerResponse) =>
    send(res, 404, 'text/html; charset=utf-8', html(404, 'Not Found', 'The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.'));
  const notAllowed = (res: http.ServerResponse) =>
    send(res, 405, 'text/html; charset=utf-8', html(405, 'Method Not Allowed', 'The method is not allowed for the requested URL.'));

  const authorized = (req: http.IncomingMessage): boolean => {
    const need = opts.requireAuth;
    if (!need) return true;
    const got = req.headers.authorization ?? '';
    if ('token' in need) return got === `Bearer ${need.token}`;
    return got === `Basic ${Buffer.from(`${need.username}:${need.password}`).toString('base64')}`;
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? 'GET';
    const entry = { method, path: url.pathname, query: url.search } as FakeMlflow['requests'][number];
    requests.push(entry);
    answered.set(res, entry);
    const at = delays.findIndex((d) => !d.match || url.pathname.includes(d.match));
    const delay = at < 0 ? 0 : delays.splice(at, 1)[0].ms;
    if (delay) {
      await new Promise<void>((r) => {
        const t = setTimeout(() => (timers.delete(t), r()), delay);
        timers.add(t);
      });
    }
    if (failures.count > 0 && (!failures.match || url.pathname.includes(failures.match))) {
      failures.count--;
      const st = failures.status;
      if (st === 429) return json(res, 429, { error_code: 'REQUEST_LIMIT_EXCEEDED', message: 'Too many requests (injected)' });
      if (st >= 500) return send(res, st, 'text/html; charset=utf-8', html(st, http.STATUS_CODES[st] ?? 'Error', 'Injected failure.'));
      return json(res, st, { error_code: 'INVALID_PARAMETER_VALUE', message: `Injected failure ${st}` });
    }
    if (!authorized(req)) {
      res.setHeader('www-authenticate', 'Basic realm="mlflow"');
      return send(res, 401, 'text/plain', 'You are not authenticated. Please see https://www.mlflow.org/docs/latest/auth/index.html#authenticating-to-mlflow on how to authenticate.');
    }
    try {
      if (url.pathname === ARTIFACTS || url.pathname.startsWith(`${ARTIFACTS}/`)) return artifacts(req, res, url, body);
      if (!url.pathname.startsWith(API)) return notFound(res);
      const route = table[url.pathname.slice(API.length)];
      if (!route) return notFound(res);
      const h = route[method];
      if (!h) return notAllowed(res);
      let params: Record<string, any>;
      if (method === 'GET') {
        params = {};
        for (const k of new Set(url.searchParams.keys())) {
          const all = url.searchParams.getAll(k);
          params[k] = k === 'order_by' ? all : all[0];
        }
      } else {
        try {
          params = body.length ? JSON.parse(body.toString('utf8')) : {};
        } catch {
          throw new FakeMlflowError('INVALID_PARAMETER_VALUE', 'Malformed request: the body is not JSON');
        }
      }
      return json(res, 200, h(params));
    } catch (e) {
      if (e instanceof FakeMlflowError) return json(res, e.status, { error_code: e.errorCode, message: e.message });
      return json(res, 500, { error_code: 'INTERNAL_ERROR', message: String((e as Error)?.message ?? e) });
    }
  };

  const artifacts = (req: http.IncomingMessage, res: http.ServerResponse, url: URL, body: Buffer) => {
    const raw = url.pathname.slice(ARTIFACTS.length + 1);
    const path = raw.split('/').map(decodeURIComponent).join('/');
    const unsafe = (p: string) => p.split('/').some((s) => s === '..') || p.startsWith('/');
    if (!raw) {
      if (req.method !== 'GET') return notAllowed(res);
      const dir = url.searchParams.get('path') ?? '';
      if (unsafe(dir)) throw new FakeMlflowError('INVALID_PARAMETER_VALUE', `Invalid path: ${dir}`);
      return json(res, 200, state.listArtifacts(dir));
    }
    if (unsafe(path)) throw new FakeMlflowError('INVALID_PARAMETER_VALUE', `Invalid path: ${path}`);
    if (req.method === 'PUT') {
      state.artifacts.set(path, body);
      return json(res, 200, {});
    }
    if (req.method === 'GET') {
      const data = state.artifacts.get(path);
      if (!data) throw new FakeMlflowError('RESOURCE_DOES_NOT_EXIST', `File ${path} not found`);
      return send(res, 200, 'application/octet-stream', data);
    }
    return notAllowed(res);
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => void handle(req, res, Buffer.concat(chunks)).catch(() => res.destroy()));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    requests,
    state,
    failNext(count, status = 503, match) {
      failures = { count, status, match };
    },
    delayNext(ms, match) {
      delays.push({ ms, match });
    },
    close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
