import { Controller, Inject, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { Msg, NodePresencePayload, NodeRevokedPayload, parsePayload } from '@fl/contracts';
import { BusContext } from '@fl/messaging';
import { recordAudit } from '@fl/persistence';
import { DATA_SOURCE } from '@fl/runtime';
import { ResultRouter } from '../rounds/result-router';
import { EdgeWorkerRegistry } from './node-registry.service';
import { SiteIdentity } from './site-identity';
import { UseCaseDefinitionsSender } from './use-case-definitions';

@Controller()
export class PresenceController {
  private readonly log = new Logger(PresenceController.name);

  constructor(
    private readonly workers: EdgeWorkerRegistry,
    private readonly router: ResultRouter,
    private readonly identity: SiteIdentity,
    private readonly useCases: UseCaseDefinitionsSender,
    @Inject(DATA_SOURCE) private readonly db: DataSource,
  ) {}

  @EventPattern(Msg.NodeRegistered)
  registered(@Payload() raw: unknown, @Ctx() ctx: BusContext): Promise<void> {
    return this.present(parsePayload(NodePresencePayload, raw), ctx, 'registration');
  }

  @EventPattern(Msg.NodeHeartbeat)
  heartbeat(@Payload() raw: unknown, @Ctx() ctx: BusContext): Promise<void> {
    return this.present(parsePayload(NodePresencePayload, raw), ctx, 'heartbeat');
  }

  private async present(p: NodePresencePayload, ctx: BusContext, kind: 'registration' | 'heartbeat'): Promise<void> {
    await this.identity.verify(ctx, p.sender);
    const outcome = await this.workers.recordPresence(p, kind);
    if (outcome === 'revoked') await this.identity.reject(ctx, p.sender, 'the site was revoked');
    if (outcome === 'joined') {
      await recordAudit(this.db, {
        actor: p.sender,
        via: ctx.userId === undefined ? 'payload' : 'broker',
        action: 'site.joined',
        targetType: 'node',
        targetId: p.sender,
        details: { use_cases: p.use_cases, examples: p.examples, version: p.version ?? null, broker_user: ctx.userId ?? null },
      });
    }
    this.router.nodeBack(p.sender);
    // A registration is a site starting or answering a coordinator that (re)started: the moment it may lack stored use cases.
    if (kind === 'registration' && outcome !== 'revoked') {
      await this.useCases.sendMissing(p.sender, p.use_cases).catch((err) => this.log.warn(`stored use cases not sent to ${p.sender}: ${err}`));
    }
  }

  /** A worker shutting down: chosen no more, and no round waits for it. */
  @EventPattern(Msg.NodeLeaving)
  async leaving(@Payload() raw: unknown, @Ctx() ctx: BusContext): Promise<void> {
    const p = parsePayload(NodePresencePayload, raw);
    await this.identity.verify(ctx, p.sender);
    await this.workers.recordLeaving(p.sender);
    this.router.dropNode(p.sender);
  }

  /**
   * An admin revoked the site: no round waits for it or takes its answers any more, and it is
   * never chosen again. Sites cannot publish this: their broker users' topic permissions allow only
   * presence messages and round results.
   */
  @EventPattern(Msg.NodeRevoked)
  async revoked(@Payload() raw: unknown): Promise<void> {
    const p = parsePayload(NodeRevokedPayload, raw);
    await this.workers.recordRevoked(p.node);
    this.router.dropNode(p.node);
  }
}
