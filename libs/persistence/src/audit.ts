/** Something that runs a parameterised query: a TypeORM DataSource or EntityManager, a pg Client. */
export interface Queryable {
  query(sql: string, params?: unknown[]): Promise<unknown>;
}

/** One line of the platform's audit log (gateway.audit_events, read by admins through GET /audit). */
export interface AuditRecord {
  /** Who: a user's subject, an API key's owner, a site's node name, `cli:<os user>`. */
  actor: string;
  /** How they were authenticated: bearer, api-key, broker (a site's own RabbitMQ user), cli. */
  via: string;
  /** e.g. task.created, site.enrolled, site.revoked, site.joined, site.rejected. */
  action: string;
  targetType: string;
  targetId?: string | number;
  details?: Record<string, unknown>;
  correlationId?: string;
}

/** Appends to the audit log; every value travels as a query parameter. */
export async function recordAudit(db: Queryable, r: AuditRecord): Promise<void> {
  await db.query(
    `INSERT INTO gateway.audit_events (actor, via, action, target_type, target_id, details, correlation_id) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)`,
    [r.actor, r.via, r.action, r.targetType, r.targetId === undefined ? null : String(r.targetId), JSON.stringify(r.details ?? {}), r.correlationId ?? null],
  );
}
