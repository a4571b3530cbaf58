import { Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { BusContext, siteUser } from '@fl/messaging';
import { AuditRecord, recordAudit } from '@fl/persistence';
import { DATA_SOURCE } from '@fl/runtime';
import { CoordinatorConfig } from '../config';
import { COORDINATOR_CONFIG } from '../tokens';

/** A site's message that is not what it claims; the delivery is dead-lettered with this reason. */
export class SiteRejectedError extends Error {
  constructor(readonly node: string, readonly reason: string) {
    super(`message claiming site '${node}' rejected: ${reason}`);
    this.name = 'SiteRejectedError';
  }
}

/**
 * Who sent a site's message, known without trusting its payload: RabbitMQ checks the `user_id`
 * property against the connection's user, and each site has its own user, `<node><SITE_USER_SUFFIX>`
 * (see `npm run cli -- nodes enroll`). With SITE_AUTH=broker a message whose payload names another
 * site than its user is rejected, dead-lettered and written to the audit log. SITE_AUTH=none trusts
 * the payload (the demo's shared connection, development brokers with one user).
 */
@Injectable()
export class SiteIdentity {
  private readonly log = new Logger(SiteIdentity.name);

  constructor(
    @Inject(DATA_SOURCE) private readonly db: DataSource,
    @Inject(COORDINATOR_CONFIG) private readonly config: CoordinatorConfig,
  ) {}

  /** Throws SiteRejectedError (after auditing it) unless the message's broker user is `node`'s. */
  async verify(ctx: BusContext, node: string): Promise<void> {
    if (this.config.SITE_AUTH === 'none') return;
    const expected = siteUser(node, this.config.SITE_USER_SUFFIX);
    if (ctx.userId === expected) return;
    const reason =
      ctx.userId === undefined
        ? `'${ctx.name}' carries no broker-validated user_id (expected '${expected}')`
        : `'${ctx.name}' was published by broker user '${ctx.userId}', not by '${expected}'`;
    await this.reject(ctx, node, reason);
  }

  /** Audits the rejection (once, however many coordinators received the message) and throws. */
  async reject(ctx: BusContext, node: string, reason: string): Promise<never> {
    this.log.warn(`message ${ctx.messageId} claiming site '${node}' rejected: ${reason}`);
    await this.auditOnce(ctx.messageId, {
      actor: ctx.userId ?? 'unknown',
      via: 'broker',
      action: 'site.rejected',
      targetType: 'node',
      targetId: node,
      details: { reason, message: ctx.name, routing_key: ctx.routingKey, coordinator: this.config.COORDINATOR_ID },
    });
    throw new SiteRejectedError(node, reason);
  }

  /**
   * Messages to `coordinators.all.*` reach every coordinator; the audit log gets one line per
   * message, keyed by its message id (under an advisory lock, so concurrent coordinators agree).
   */
  async auditOnce(messageId: string, record: AuditRecord): Promise<void> {
    await this.db.transaction(async (m) => {
      await m.query(`SELECT pg_advisory_xact_lock(hashtext('audit:' || $1))`, [messageId]);
      const seen: unknown[] = await m.query(
        `SELECT 1 FROM gateway.audit_events WHERE action = $1 AND details->>'message_id' = $2 LIMIT 1`,
        [record.action, messageId],
      );
      if (seen.length === 0) await recordAudit(m, { ...record, details: { ...record.details, message_id: messageId } });
    });
  }
}
