import { IsIn, IsInt, IsNumber, IsOptional, IsString, Matches, Max, Min } from 'class-validator';
import { WORD_PATTERN } from '@fl/contracts';
import { BaseConfig, ConfigError } from '@fl/runtime';

export class GatewayConfig extends BaseConfig {
  @IsInt() @Min(0) @Max(65535) PORT = 8000;
  @IsString() HOST = '0.0.0.0';
  /** Names this gateway's event queue (fl.gateway.<id>); replicas need distinct ids. */
  @Matches(WORD_PATTERN) GATEWAY_ID = 'gateway';
  /** GET /nodes shows a worker online for this long after its last heartbeat (as the coordinator counts it). */
  @IsNumber() @Min(1) @Max(3600) NODE_ONLINE_WINDOW_S = 30;
  /** A task still pending this long is handed to the coordinators again (its submission may have gone nowhere); as often, untold deletions are sent. */
  @IsNumber() @Min(0.1) @Max(86400) TASK_RESUBMIT_S = 30;
  /** oidc: bearer tokens of AUTH_ISSUER and API keys; none: no authentication (demo, local development). */
  @IsIn(['oidc', 'none']) AUTH_MODE: 'oidc' | 'none' = 'oidc';
  @IsOptional() @IsString() AUTH_ISSUER?: string;
  @IsOptional() @IsString() AUTH_AUDIENCE?: string;
  @IsOptional() @Matches(/^https?:\/\/.+/, { message: 'AUTH_JWKS_URL must be an http(s) URL' }) AUTH_JWKS_URL?: string;
  /** Dotted path of the roles claim (Keycloak: realm_access.roles). Roles: admin, scientist, viewer. */
  @IsString() AUTH_ROLES_CLAIM = 'roles';
  @IsNumber() @Min(0) @Max(600) AUTH_CLOCK_SKEW_S = 30;
  @IsIn(['true', 'false']) AUTH_ALLOW_NONE_IN_PRODUCTION: 'true' | 'false' = 'false';
  /** Browser origins allowed to call the API (comma-separated); empty: none (the predecessor allowed every origin). */
  @IsOptional() @Matches(/^https?:\/\/[^,\s]+(,https?:\/\/[^,\s]+)*$/, { message: 'CORS_ORIGINS must be a comma-separated list of http(s) origins' }) CORS_ORIGINS?: string;
  /** Requests per minute per client address; health and metrics are not counted. */
  @IsInt() @Min(1) @Max(1_000_000) RATE_LIMIT_PER_MINUTE = 600;
  /** Largest request body accepted, e.g. 100kb or 1mb. */
  @Matches(/^\d+(b|kb|mb)$/, { message: 'BODY_LIMIT must be a size such as 100kb or 1mb' }) BODY_LIMIT = '100kb';
}

export const GATEWAY_CONFIG = Symbol('GATEWAY_CONFIG');

/**
 * Authentication must be configured, or switched off on purpose: OIDC needs
 * its issuer, audience and key set; AUTH_MODE=none is refused in production
 * (NODE_ENV=production) unless forced.
 */
export function checkAuthConfig(c: GatewayConfig): void {
  if (c.AUTH_MODE === 'oidc') {
    const missing = (['AUTH_ISSUER', 'AUTH_AUDIENCE', 'AUTH_JWKS_URL'] as const).filter((k) => !c[k]);
    if (missing.length) throw new ConfigError(missing.map((k) => `${k} is required with AUTH_MODE=oidc (or set AUTH_MODE=none for a local demo)`));
  } else if (process.env.NODE_ENV === 'production' && c.AUTH_ALLOW_NONE_IN_PRODUCTION !== 'true') {
    throw new ConfigError(['AUTH_MODE=none is refused with NODE_ENV=production; set AUTH_ALLOW_NONE_IN_PRODUCTION=true to force it']);
  }
}
