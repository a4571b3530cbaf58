import { CanActivate, ExecutionContext, ForbiddenException, Inject, Injectable, ServiceUnavailableException, UnauthorizedException } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { GATEWAY_CONFIG, GatewayConfig } from '../config';
import { ApiKeysService } from './api-keys.service';
import { PUBLIC_ROUTE, REQUIRED_ROLES } from './decorators';
import { InvalidTokenError, JwtVerifier } from './jwt-verifier';
import { Principal, Role } from './principal';

export const JWT_VERIFIER = Symbol('JWT_VERIFIER');

/** With AUTH_MODE=none every caller is an anonymous admin: for the demo and local development only. */
const ANONYMOUS_ADMIN: Principal = { subject: 'anonymous', roles: ['admin'], via: 'none' };

function unauthorized(reason: string): UnauthorizedException {
  return new UnauthorizedException({ message: `authentication required: ${reason}`, details: [{ field: 'authorization', reason }] });
}

/**
 * Every HTTP route needs a caller, unless marked @Public: a bearer token of
 * the configured OIDC issuer, or an API key (X-API-Key). Routes marked
 * @Roles need one of those roles. Messages from the broker are not HTTP
 * requests and are not checked here.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly apiKeys: ApiKeysService,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(JWT_VERIFIER) private readonly jwt: JwtVerifier | null,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return true;
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, targets)) return true;
    const req = context.switchToHttp().getRequest<Request & { principal?: Principal }>();
    req.principal = await this.authenticate(req);
    const required = this.reflector.getAllAndOverride<Role[] | undefined>(REQUIRED_ROLES, targets);
    if (required?.length && !required.some((r) => req.principal!.roles.includes(r))) {
      throw new ForbiddenException(`this needs the role ${required.join(' or ')}; you have ${req.principal.roles.join(', ') || 'none'}`);
    }
    return true;
  }

  private async authenticate(req: Request): Promise<Principal> {
    if (this.config.AUTH_MODE === 'none') return ANONYMOUS_ADMIN;
    const apiKey = req.header('x-api-key');
    if (apiKey) {
      const p = await this.apiKeys.verify(apiKey);
      if (!p) throw unauthorized('the API key is not valid or was revoked');
      return p;
    }
    const header = req.header('authorization');
    if (!header) throw unauthorized('send a bearer token (Authorization: Bearer <token>) or an API key (X-API-Key)');
    const [scheme, token] = header.split(' ');
    if (scheme?.toLowerCase() !== 'bearer' || !token) throw unauthorized('the Authorization header must be "Bearer <token>"');
    try {
      return await this.jwt!.verify(token);
    } catch (err) {
      if (err instanceof InvalidTokenError) throw unauthorized(err.message);
      throw new ServiceUnavailableException(`the identity provider's keys could not be fetched: ${(err as Error).message}`);
    }
  }
}
