import { createRemoteJWKSet, errors, JWTPayload, jwtVerify } from 'jose';
import { Principal, Role, ROLES } from './principal';

export interface JwtSettings {
  issuer: string;
  audience: string;
  jwksUrl: string;
  /** Dotted path of the roles claim, e.g. `roles` or Keycloak's `realm_access.roles`. */
  rolesClaim: string;
  clockSkewS: number;
}

/** Algorithms accepted: asymmetric only, so `none` and HMAC confusion are refused. */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

export class InvalidTokenError extends Error {}

function claimAt(payload: JWTPayload, path: string): unknown {
  return path.split('.').reduce<unknown>((v, key) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[key] : undefined), payload);
}

/** Roles from the configured claim: an array or a space-separated string; unknown roles are ignored. */
export function rolesFrom(payload: JWTPayload, claim: string): Role[] {
  const raw = claimAt(payload, claim);
  const list = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(/\s+/) : [];
  return ROLES.filter((r) => list.includes(r));
}

/**
 * Verifies bearer tokens of an OIDC provider: signature against the
 * provider's JWKS (fetched and cached by jose, refreshed on an unknown key
 * id), issuer, audience, expiry and not-before with a clock skew.
 */
export class JwtVerifier {
  private readonly jwks: ReturnType<typeof createRemoteJWKSet>;

  constructor(private readonly settings: JwtSettings) {
    this.jwks = createRemoteJWKSet(new URL(settings.jwksUrl));
  }

  async verify(token: string): Promise<Principal> {
    try {
      const { payload } = await jwtVerify(token, this.jwks, {
        issuer: this.settings.issuer,
        audience: this.settings.audience,
        clockTolerance: this.settings.clockSkewS,
        algorithms: ALGORITHMS,
        requiredClaims: ['sub', 'exp'],
      });
      return { subject: payload.sub!, roles: rolesFrom(payload, this.settings.rolesClaim), via: 'jwt' };
    } catch (err) {
      if (err instanceof errors.JOSEError) throw new InvalidTokenError(describe(err));
      throw err;
    }
  }
}

function describe(err: InstanceType<typeof errors.JOSEError>): string {
  if (err instanceof errors.JWTExpired) return 'the token has expired';
  if (err instanceof errors.JWTClaimValidationFailed) return `the token's ${err.claim} claim is not accepted`;
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'the token signature does not verify';
  if (err instanceof errors.JOSEAlgNotAllowed) return 'the token algorithm is not accepted';
  if (err instanceof errors.JWKSNoMatchingKey) return "the token's key is not in the issuer's key set";
  return 'the token is not valid';
}
