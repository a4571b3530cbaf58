import { Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Msg, Routes, UseCaseDefinedPayload } from '@fl/contracts';
import { MessageBus } from '@fl/messaging';
import { BUS, DATA_SOURCE } from '@fl/runtime';
import { CoordinatorConfig } from '../config';
import { COORDINATOR_CONFIG } from '../tokens';

/**
 * Edge workers have no database, so the use cases stored at the gateway
 * (gateway.use_cases, read here as the coordinator reads other gateway rows)
 * reach a site over the bus: the gateway broadcasts each new one, and a
 * coordinator sends a registering site every stored one it does not serve, so
 * that a site that was down at the time, or starts later, or registers again
 * for a coordinator that restarted, learns them too. Sites ignore a definition
 * they already handled, so sending one twice (two coordinators, a site that
 * refuses it) costs a small message and nothing else.
 */
@Injectable()
export class UseCaseDefinitionsSender {
  private readonly log = new Logger(UseCaseDefinitionsSender.name);

  constructor(
    @Inject(DATA_SOURCE) private readonly db: DataSource,
    @Inject(BUS) private readonly bus: MessageBus,
    @Inject(COORDINATOR_CONFIG) private readonly config: CoordinatorConfig,
  ) {}

  /** Sends `node` the definitions of the stored use cases it does not serve; returns their names. */
  async sendMissing(node: string, served: string[]): Promise<string[]> {
    const rows: { name: string; definition: Record<string, unknown> }[] = await this.db.query(
      `SELECT name, definition FROM gateway.use_cases WHERE NOT (name = ANY($1::text[])) ORDER BY name`,
      [served],
    );
    for (const r of rows) {
      const payload: UseCaseDefinedPayload = { task_id: 0, round: 0, sender: this.config.COORDINATOR_ID, definition: r.definition };
      await this.bus.publish(Routes.worker(node, Msg.UseCaseDefined), { name: Msg.UseCaseDefined, payload: { ...payload } });
    }
    if (rows.length) this.log.debug(`sent ${node} the stored use case(s) it does not serve: ${rows.map((r) => r.name).join(', ')}`);
    return rows.map((r) => r.name);
  }
}
