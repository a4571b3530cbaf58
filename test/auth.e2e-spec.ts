import { Platform } from './support/platform';

/**
 * Users at the gateway, through a real token path: the suite's own issuer
 * signs tokens with its own RSA key and serves its key set on localhost; the
 * gateway verifies them as it would a hospital's OIDC provider's.
 */
describe('authentication and roles at the gateway', () => {
  const platform = new Platform();
  const as = (token: string) => ({ authorization: `Bearer ${token}` });
  const body = (userId: string) => ({
    user_id: userId, use_case: 'iris', model_name: 'iris', model_version: 1, num_global_iterations: 1, run_name: 'r', experiment_name: 'Default',
  });
  let alice: string; // scientist
  let bob: string; // scientist
  let vera: string; // viewer

  beforeAll(async () => {
    await platform.provision();
    await platform.startGateway({ RATE_LIMIT_PER_MINUTE: '150', CORS_ORIGINS: 'https://fl.hospital.example', BODY_LIMIT: '20kb' });
    await platform.cli('models', 'publish', 'iris');
    alice = await platform.issuer.token('alice', ['scientist']);
    bob = await platform.issuer.token('bob', ['scientist']);
    vera = await platform.issuer.token('vera', ['viewer']);
  }, 120_000);

  afterAll(() => platform.stop(), 60_000);

  it('answers the ping, health and the API docs without credentials', async () => {
    expect((await platform.fetch('GET', '/', undefined, { authorization: '' })).status).toBe(200);
    expect((await platform.fetch('GET', '/health/live', undefined, { authorization: '' })).status).toBe(200);
    expect((await fetch(`${platform.gatewayUrl}/docs`)).status).toBe(200);
    const spec = (await platform.fetch('GET', '/openapi.json', undefined, { authorization: '' })).body;
    expect(spec.components.securitySchemes).toMatchObject({ bearer: { type: 'http', scheme: 'bearer' }, 'api-key': { type: 'apiKey', in: 'header', name: 'X-API-Key' } });
  });

  it.each([
    ['no credentials', async () => ({ authorization: '' }), 'send a bearer token'],
    ['an expired token', async () => as(await platform.issuer.token('alice', ['scientist'], { expiresIn: Math.floor(Date.now() / 1000) - 3600 })), 'expired'],
    ['a token for another audience', async () => as(await platform.issuer.token('alice', ['scientist'], { audience: 'someone-else' })), 'aud claim'],
    ['a token of another issuer', async () => as(await platform.issuer.token('alice', ['admin'], { issuer: 'https://evil.example' })), 'iss claim'],
    ['a token signed with a key the issuer does not publish', async () => as(await platform.issuer.token('alice', ['admin'], { strangerKey: true })), 'signature'],
    ['an unsigned token (alg none)', async () => as(platform.issuer.unsigned('alice', ['admin'])), 'not'],
    ['a malformed Authorization header', async () => ({ authorization: 'Basic YWRtaW46YWRtaW4=' }), 'Bearer'],
    ['an unknown API key', async () => ({ authorization: '', 'x-api-key': 'flk_nope' }), 'API key'],
  ])('refuses %s with 401 and changes nothing', async (_, headers, reason) => {
    const before = (await platform.fetch('GET', '/tasks')).body.length;
    const res = await platform.fetch('POST', '/tasks', body('alice'), await headers());
    expect(res.status).toBe(401);
    expect(res.body.message).toContain(reason);
    expect((await platform.fetch('GET', '/tasks', undefined, await headers())).status).toBe(401);
    expect((await platform.fetch('GET', '/tasks')).body.length).toBe(before);
  });

  it('lets scientists create, see and cancel only their own tasks; viewers read; admins do everything', async () => {
    const mine = await platform.fetch('POST', '/tasks', body('alice'), as(alice));
    expect(mine.status).toBe(200);
    const forBob = await platform.fetch('POST', '/tasks', body('bob'), as(alice));
    expect(forBob.status).toBe(403);
    expect(forBob.body.message).toContain("user_id must be your own subject ('alice')");
    const bobs = await platform.fetch('POST', '/tasks', body('bob'), as(bob));
    expect(bobs.status).toBe(200);
    const onBehalf = await platform.fetch('POST', '/tasks', body('carol'));
    expect(onBehalf.status).toBe(200); // the admin may submit for anyone

    expect((await platform.fetch('GET', '/tasks', undefined, as(alice))).body.map((t: any) => t.user_id)).toEqual(['alice']);
    expect((await platform.fetch('GET', `/tasks/${bobs.body.id}`, undefined, as(alice))).status).toBe(404);
    expect((await platform.fetch('GET', `/tasks/${bobs.body.id}/rounds`, undefined, as(alice))).status).toBe(404);
    expect((await platform.fetch('GET', '/tasks/user/bob', undefined, as(alice))).status).toBe(403);
    expect((await platform.fetch('PUT', `/tasks/cancel/${bobs.body.id}`, undefined, as(alice))).status).toBe(404);
    expect((await platform.fetch('GET', `/tasks/${bobs.body.id}`)).body.status).toBe('pending');
    expect((await platform.fetch('PUT', `/tasks/cancel/${mine.body.id}`, undefined, as(alice))).body.status).toBe('cancelled');

    expect((await platform.fetch('GET', '/tasks', undefined, as(vera))).body.length).toBe(3);
    expect((await platform.fetch('POST', '/tasks', body('vera'), as(vera))).status).toBe(403);
    expect((await platform.fetch('PUT', `/tasks/cancel/${bobs.body.id}`, undefined, as(vera))).status).toBe(403);
    expect((await platform.fetch('DELETE', '/tasks', undefined, as(alice))).status).toBe(403);
    expect((await platform.fetch('GET', '/models', undefined, as(vera))).status).toBe(200);
  });

  it('lets an admin create an API key, shown once and stored hashed, and revoke it', async () => {
    expect((await platform.fetch('POST', '/api-keys', { name: 'x', subject: 'svc', role: 'scientist' }, as(alice))).status).toBe(403);
    const created = await platform.fetch('POST', '/api-keys', { name: 'nightly', subject: 'svc-nightly', role: 'scientist' });
    expect(created.status).toBe(201);
    const key: string = created.body.key;
    expect(key).toMatch(/^flk_[A-Za-z0-9_-]{43}$/);
    const listed = (await platform.fetch('GET', '/api-keys')).body;
    expect(JSON.stringify(listed)).not.toContain(key);
    expect(listed).toEqual([expect.objectContaining({ id: created.body.id, subject: 'svc-nightly', role: 'scientist', key_prefix: key.slice(0, 10), revoked_at: null })]);

    const withKey = { authorization: '', 'x-api-key': key };
    const task = await platform.fetch('POST', '/tasks', body('svc-nightly'), withKey);
    expect(task.status).toBe(200);
    expect(task.body.user_id).toBe('svc-nightly');
    expect((await platform.fetch('POST', '/tasks', body('alice'), withKey)).status).toBe(403);

    expect((await platform.fetch('DELETE', `/api-keys/${created.body.id}`)).body.revoked_at).not.toBeNull();
    expect((await platform.fetch('GET', '/tasks', undefined, withKey)).status).toBe(401);
  });

  it('keeps an audit log of who created, cancelled and deleted what, readable by admins only', async () => {
    expect((await platform.fetch('GET', '/audit', undefined, as(alice))).status).toBe(403);
    const events = (await platform.fetch('GET', '/audit?limit=1000')).body as { actor: string; via: string; action: string; target_id: string | null }[];
    const seen = events.map((e) => `${e.actor}/${e.via} ${e.action} ${e.target_id ?? ''}`.trim());
    expect(seen).toEqual(expect.arrayContaining([
      expect.stringMatching(/^alice\/jwt task.created \d+$/),
      expect.stringMatching(/^alice\/jwt task.cancelled \d+$/),
      expect.stringMatching(/^e2e-admin\/jwt api-key.created \d+$/),
      expect.stringMatching(/^e2e-admin\/jwt api-key.revoked \d+$/),
      expect.stringMatching(/^svc-nightly\/api-key task.created \d+$/),
    ]));
    // Refused requests changed nothing, so they left nothing in the log either.
    expect(seen.filter((e) => e.startsWith('vera/'))).toEqual([]);
    expect((await platform.fetch('GET', '/audit?limit=0')).status).toBe(400);
  });

  it('sends security headers, allows CORS only from configured origins, and bounds bodies', async () => {
    const ping = await platform.fetch('GET', '/', undefined, { authorization: '' });
    expect(ping.headers.get('x-content-type-options')).toBe('nosniff');
    expect(ping.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    expect(ping.headers.get('x-powered-by')).toBeNull();
    const preflight = (origin: string) =>
      fetch(`${platform.gatewayUrl}/tasks`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' } });
    expect((await preflight('https://fl.hospital.example')).headers.get('access-control-allow-origin')).toBe('https://fl.hospital.example');
    expect((await preflight('https://evil.example')).headers.get('access-control-allow-origin')).toBeNull();
    const before = (await platform.fetch('GET', '/tasks')).body.length;
    const huge = await platform.fetch('POST', '/tasks', { ...body('e2e-admin'), run_name: 'x'.repeat(30_000) });
    expect(huge.status).toBe(413);
    expect(huge.body).toMatchObject({ statusCode: 413, correlation_id: expect.any(String) });
    expect((await platform.fetch('GET', '/tasks')).body.length).toBe(before);
  });

  // Last: it spends this gateway's request budget.
  it('limits requests per client, without counting health checks', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 160; i++) statuses.push((await platform.fetch('GET', '/models')).status);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    const limited = await platform.fetch('GET', '/models');
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await platform.fetch('GET', '/health/live')).status).toBe(200);
  });
});
