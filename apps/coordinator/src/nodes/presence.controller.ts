import { Controller } from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';
import { Msg, NodePresencePayload, parsePayload } from '@fl/contracts';
import { ResultRouter } from '../rounds/result-router';
import { EdgeWorkerRegistry } from './node-registry.service';

@Controller()
export class PresenceController {
  constructor(
    private readonly workers: EdgeWorkerRegistry,
    private readonly router: ResultRouter,
  ) {}

  @EventPattern(Msg.NodeRegistered)
  registered(@Payload() raw: unknown): Promise<void> {
    return this.present(parsePayload(NodePresencePayload, raw));
  }

  @EventPattern(Msg.NodeHeartbeat)
  heartbeat(@Payload() raw: unknown): Promise<void> {
    return this.present(parsePayload(NodePresencePayload, raw));
  }

  private async present(p: NodePresencePayload): Promise<void> {
    await this.workers.recordPresence(p);
    this.router.nodeBack(p.sender);
  }

  /** A worker shutting down: chosen no more, and no round waits for it. */
  @EventPattern(Msg.NodeLeaving)
  async leaving(@Payload() raw: unknown): Promise<void> {
    const p = parsePayload(NodePresencePayload, raw);
    await this.workers.recordLeaving(p.sender);
    this.router.dropNode(p.sender);
  }
}
