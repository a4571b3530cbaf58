import { ExecutionContext, Injectable } from '@nestjs/common';
import { ThrottlerGuard } from '@nestjs/throttler';

/**
 * RATE_LIMIT_PER_MINUTE per client address over the HTTP API (429 with
 * Retry-After beyond it). Health checks and metrics scrapes are not counted,
 * and neither are broker messages.
 */
@Injectable()
export class ClientRateLimit extends ThrottlerGuard {
  protected async shouldSkip(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return true;
    const url: string = context.switchToHttp().getRequest().url ?? '';
    return url.startsWith('/health') || url === '/metrics';
  }
}
