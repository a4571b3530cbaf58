import { Controller } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { EvaluateResultPayload, FitResultPayload, Msg, parsePayload } from '@fl/contracts';
import { BusContext } from '@fl/messaging';
import { ResultRouter } from './result-router';

@Controller()
export class ResultsController {
  constructor(private readonly router: ResultRouter) {}

  @EventPattern(Msg.RoundFitResult)
  fit(@Payload() raw: unknown, @Ctx() ctx: BusContext): void {
    const p = parsePayload(FitResultPayload, raw);
    this.router.route(p.task_id, p.round, 'fit', p.sender, { payload: p, attachment: ctx.attachment });
  }

  @EventPattern(Msg.RoundEvaluateResult)
  evaluate(@Payload() raw: unknown): void {
    const p = parsePayload(EvaluateResultPayload, raw);
    this.router.route(p.task_id, p.round, 'evaluate', p.sender, { payload: p });
  }
}
