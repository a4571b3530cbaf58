import { Global, Logger, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { GATEWAY_CONFIG, GatewayConfig } from '../config';
import { ApiKeysController } from './api-keys.controller';
import { ApiKeysService } from './api-keys.service';
import { AuthGuard, JWT_VERIFIER } from './auth.guard';
import { JwtVerifier } from './jwt-verifier';

@Global()
@Module({
  controllers: [ApiKeysController],
  providers: [
    ApiKeysService,
    {
      provide: JWT_VERIFIER,
      inject: [GATEWAY_CONFIG],
      useFactory: (c: GatewayConfig) => {
        if (c.AUTH_MODE === 'none') {
          new Logger('Auth').warn('AUTH_MODE=none: authentication is OFF, every caller is an anonymous admin. For the demo and local development only.');
          return null;
        }
        return new JwtVerifier({ issuer: c.AUTH_ISSUER!, audience: c.AUTH_AUDIENCE!, jwksUrl: c.AUTH_JWKS_URL!, rolesClaim: c.AUTH_ROLES_CLAIM, clockSkewS: c.AUTH_CLOCK_SKEW_S });
      },
    },
    { provide: APP_GUARD, useClass: AuthGuard },
  ],
})
export class AuthModule {}
