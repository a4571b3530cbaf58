import { Controller } from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';
import { Envelope, Msg, parsePayload } from '@fl/contracts';
import { PresenceService } from './presence.service';

@Controller()
export class PresenceController {
  constructor(private readonly presence: PresenceService) {}

  /** A coordinator (re)started and asks who is there. */
  @EventPattern(Msg.PresenceRequested)
  presenceRequested(@Payload() raw: unknown): Promise<void> {
    parsePayload(Envelope, raw);
    return this.presence.announceNow();
  }
}
