import { Controller } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { EvaluateResultPayload, FitResultPayload, Msg, parsePayload, StatsResultPayload } from '@fl/contracts';
import { BusContext } from '@fl/messaging';
import { SiteIdentity } from '../nodes/site-identity';
import { ResultRouter } from './result-router';

@Controller()
export class ResultsController {
  constructor(
    private readonly router: ResultRouter,
    private readonly identity: SiteIdentity,
  ) {}

  @EventPattern(Msg.RoundFitResult)
  async fit(@Payload() raw: unknown, @Ctx() ctx: BusContext): Promise<void> {
    const p = parsePayload(FitResultPayload, raw);
    await this.identity.verify(ctx, p.sender);
    // Settles once the update is folded in: the bus acknowledges it, and lets the next large one into memory, only then.
    await this.router.routeAsync(p.task_id, p.round, 'fit', p.sender, { payload: p, attachment: ctx.attachment, attachmentSha256: ctx.attachmentSha256 });
  }

  @EventPattern(Msg.RoundStatsResult)
  async stats(@Payload() raw: unknown, @Ctx() ctx: BusContext): Promise<void> {
    const p = parsePayload(StatsResultPayload, raw);
    await this.identity.verify(ctx, p.sender);
    this.router.route(p.task_id, p.round, 'stats', p.sender, { payload: p, attachment: ctx.attachment });
  }

  @EventPattern(Msg.RoundEvaluateResult)
  async evaluate(@Payload() raw: unknown, @Ctx() ctx: BusContext): Promise<void> {
    const p = parsePayload(EvaluateResultPayload, raw);
    await this.identity.verify(ctx, p.sender);
    this.router.route(p.task_id, p.round, 'evaluate', p.sender, { payload: p });
  }
}
