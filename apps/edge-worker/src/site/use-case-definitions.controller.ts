import { Controller } from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';
import { Msg, parsePayload, UseCaseDefinedPayload } from '@fl/contracts';
import { UseCaseDefinitions } from './use-case-definitions';

@Controller()
export class UseCaseDefinitionsController {
  constructor(private readonly definitions: UseCaseDefinitions) {}

  /** A use case stored at the gateway: from the gateway when it is added, from a coordinator when this site registers. */
  @EventPattern(Msg.UseCaseDefined)
  async defined(@Payload() raw: unknown): Promise<void> {
    const p = parsePayload(UseCaseDefinedPayload, raw);
    await this.definitions.receive(p.definition, p.sender);
  }
}
