import { createServer, Server } from 'node:http';
import { exportJWK, generateKeyPair, JWK, KeyLike, SignJWT } from 'jose';

/**
 * A throw-away OIDC issuer for tests: its own RSA key pair, its key set
 * served on localhost like a provider's JWKS endpoint, and tokens signed
 * with it (or, to test refusals, with a key it does not publish).
 */
export class TestIssuer {
  readonly issuer = 'https://issuer.test/realms/fl';
  readonly audience = 'fl-gateway';
  private server!: Server;
  private key!: KeyLike;
  private strangerKey!: KeyLike;
  jwksUrl = '';

  async start(): Promise<void> {
    const own = await generateKeyPair('RS256');
    const stranger = await generateKeyPair('RS256');
    this.key = own.privateKey;
    this.strangerKey = stranger.privateKey;
    const jwk: JWK = { ...(await exportJWK(own.publicKey)), kid: 'test-key', alg: 'RS256', use: 'sig' };
    const body = JSON.stringify({ keys: [jwk] });
    this.server = createServer((_, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(body));
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.jwksUrl = `http://127.0.0.1:${(this.server.address() as { port: number }).port}/jwks.json`;
  }

  async stop(): Promise<void> {
    await new Promise((r) => this.server.close(r));
  }

  /** Environment for a gateway trusting this issuer. */
  env(): Record<string, string> {
    return { AUTH_MODE: 'oidc', AUTH_ISSUER: this.issuer, AUTH_AUDIENCE: this.audience, AUTH_JWKS_URL: this.jwksUrl };
  }

  /** A token for `sub` with `roles`; `opts` make it wrong in one way at a time. */
  async token(
    sub: string,
    roles: string[],
    opts: { expiresIn?: string | number; audience?: string; issuer?: string; strangerKey?: boolean } = {},
  ): Promise<string> {
    return new SignJWT({ roles })
      .setProtectedHeader({ alg: 'RS256', kid: 'test-key' })
      .setSubject(sub)
      .setIssuer(opts.issuer ?? this.issuer)
      .setAudience(opts.audience ?? this.audience)
      .setIssuedAt()
      .setExpirationTime(opts.expiresIn ?? '10m')
      .sign(opts.strangerKey ? this.strangerKey : this.key);
  }

  /** An unsigned token (alg "none"), as an attacker would send it. */
  unsigned(sub: string, roles: string[]): string {
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    return `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub, roles, iss: this.issuer, aud: this.audience, iat: now, exp: now + 600 })}.`;
  }
}
