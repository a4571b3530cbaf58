#!/usr/bin/env node
/**
 * Container health check without curl (the slim images have none):
 *
 *   node docker/healthcheck.js gateway       GET http://127.0.0.1:$PORT/health/live         (PORT, default 8000)
 *   node docker/healthcheck.js coordinator   GET http://127.0.0.1:$HEALTH_PORT/health/live  (HEALTH_PORT, default 8081)
 *   node docker/healthcheck.js edge-worker   same as coordinator
 *   optional second argument: another path, e.g. /health/ready
 *
 * Exit 0 on a 2xx answer within HEALTHCHECK_TIMEOUT_MS (default 3000),
 * 1 otherwise. HEALTH_PORT=0 disables the health port, so there is nothing to
 * ask: the check passes and says so.
 */
const http = require('node:http');

const app = process.argv[2] ?? 'gateway';
const path = process.argv[3] ?? '/health/live';
const variable = app === 'gateway' ? 'PORT' : 'HEALTH_PORT';
const port = Number(process.env[variable] || (app === 'gateway' ? 8000 : 8081));
const timeoutMs = Number(process.env.HEALTHCHECK_TIMEOUT_MS || 3000);

if (port === 0) {
  console.log(`${variable}=0: health endpoint disabled, nothing to check`);
  process.exit(0);
}

const req = http.get({ host: '127.0.0.1', port, path, timeout: timeoutMs }, (res) => {
  res.resume();
  const ok = res.statusCode >= 200 && res.statusCode < 300;
  console.log(`GET ${path} on :${port}: ${res.statusCode}`);
  process.exit(ok ? 0 : 1);
});
req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
req.on('error', (err) => {
  console.log(`GET ${path} on :${port}: ${err.message}`);
  process.exit(1);
});
