import { Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { recordAudit } from '@fl/persistence';
import { DATA_SOURCE } from '@fl/runtime';
import { Principal } from '../auth/principal';

export type AuditAction = 'task.created' | 'task.cancelled' | 'tasks.deleted' | 'api-key.created' | 'api-key.revoked';

export interface AuditEvent {
  id: string;
  at: string;
  actor: string;
  via: string;
  action: string;
  target_type: string;
  target_id: string | null;
  details: Record<string, unknown>;
  correlation_id: string | null;
}

/** The audit log: who created, cancelled or deleted what, and when. */
@Injectable()
export class AuditLog {
  private readonly log = new Logger(AuditLog.name);

  constructor(@Inject(DATA_SOURCE) private readonly db: DataSource) {}

  async record(
    actor: Principal,
    action: AuditAction,
    target: { type: string; id?: string | number },
    details: Record<string, unknown> = {},
    correlationId?: string,
  ): Promise<void> {
    await recordAudit(this.db, { actor: actor.subject, via: actor.via, action, targetType: target.type, targetId: target.id, details, correlationId });
    this.log.log({ msg: `${actor.subject} ${action} ${target.type}${target.id === undefined ? '' : ` ${target.id}`}`, audit: true, correlation_id: correlationId });
  }

  async list(opts: { limit: number; before?: number }): Promise<AuditEvent[]> {
    const rows: (Omit<AuditEvent, 'at'> & { at: Date })[] = await this.db.query(
      `SELECT * FROM gateway.audit_events WHERE ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $1`,
      [opts.limit, opts.before ?? null],
    );
    return rows.map((r) => ({ ...r, id: String(r.id), at: r.at.toISOString() }));
  }
}
