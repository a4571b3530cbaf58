import { Controller } from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';
import { Msg, NodePresencePayload, parsePayload } from '@fl/contracts';
import { EdgeWorkerRegistry } from './node-registry.service';

@Controller()
export class PresenceController {
  constructor(private readonly workers: EdgeWorkerRegistry) {}

  @EventPattern(Msg.NodeRegistered)
  registered(@Payload() raw: unknown): Promise<void> {
    return this.workers.recordPresence(parsePayload(NodePresencePayload, raw));
  }

  @EventPattern(Msg.NodeHeartbeat)
  heartbeat(@Payload() raw: unknown): Promise<void> {
    return this.workers.recordPresence(parsePayload(NodePresencePayload, raw));
  }
}
