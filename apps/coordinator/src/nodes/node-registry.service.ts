import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { NodePresencePayload } from '@fl/contracts';
import { DATA_SOURCE } from '@fl/runtime';
import { CoordinatorConfig } from '../config';
import { COORDINATOR_CONFIG } from '../tokens';

export interface OnlineNode {
  name: string;
  train: number;
  test: number;
}

/**
 * How long a use case's online workers, once read, answer the next rounds' questions. Quick rounds
 * otherwise read them from the database each round. Every registration, goodbye or revocation this
 * coordinator records forgets them at once (every coordinator hears every site), and so does a
 * heartbeat that changes what they are (a site's use cases or examples); so what this adds is at most
 * this long to the online window of a site that fell silent.
 */
export const ONLINE_REUSE_MS = 1000;

/** The edge workers this coordinator knows, from their registrations and heartbeats. */
@Injectable()
export class EdgeWorkerRegistry {
  /** Use case -> its online workers (by name) and when they were read (`now`). */
  private readonly recentOnline = new Map<string, { at: number; nodes: Map<string, OnlineNode> }>();
  /** Counts the presence changes recorded, so that a read that overlapped one is not reused. */
  private changes = 0;
  /** The clock of ONLINE_REUSE_MS (milliseconds); tests move it. */
  now: () => number = () => performance.now();

  constructor(
    @Inject(DATA_SOURCE) private readonly db: DataSource,
    @Inject(COORDINATOR_CONFIG) private readonly config: CoordinatorConfig,
  ) {}

  /**
   * Runs a presence write: a read of the online workers that overlaps it is not reused. With `forget`
   * (the default) the lists read before it are forgotten too; otherwise the caller forgets what changed.
   */
  private async changing<T>(write: () => Promise<T>, forget = true): Promise<T> {
    this.changes++;
    if (forget) this.recentOnline.clear();
    try {
      return await write();
    } finally {
      this.changes++;
      if (forget) this.recentOnline.clear();
    }
  }

  /**
   * After a heartbeat of a site that was online: the lists kept that it changes (the site joins or
   * leaves one, its examples differ) are forgotten; the others, read before or after the heartbeat,
   * still hold. So at a thousand sites, each heartbeating, a quick round does not read them each time.
   */
  private forgetChangedBy(p: NodePresencePayload): void {
    for (const [useCase, kept] of this.recentOnline) {
      const counts = p.use_cases.includes(useCase) ? p.examples[useCase] : undefined;
      const now = counts && { train: counts.train ?? 0, test: counts.test ?? 0 };
      const listed = now && (now.train > 0 || now.test > 0) ? now : undefined;
      const was = kept.nodes.get(p.sender);
      if (was?.train !== listed?.train || was?.test !== listed?.test) this.recentOnline.delete(useCase);
    }
  }

  /**
   * Records a registration or heartbeat: 'joined' when the site was not online before (new, enrolled
   * or offline; for a registration also when silent past the online window: a restart after a crash),
   * 'present' otherwise, 'revoked' (nothing changed) when it was revoked: only a new enrolment brings
   * it back. A late heartbeat (queued behind other messages) is not a join. Serialised per site, so
   * that coordinators hearing the same message agree on which of them saw the site join.
   */
  async recordPresence(p: NodePresencePayload, kind: 'registration' | 'heartbeat'): Promise<'joined' | 'present' | 'revoked'> {
    const info = JSON.stringify({ version: p.version ?? null, rejected_use_cases: p.rejected_use_cases ?? {} });
    if (kind === 'heartbeat') {
      // Most heartbeats come from a site online already: one statement. The row lock and the re-checked status make it
      // safe beside a coordinator recording the same site's join (it waits, then finds the site online: 'present').
      const [, touched]: [unknown[], number] = await this.changing(
        () =>
          this.db.query(
            `UPDATE coordinator.nodes SET use_cases = $2, examples = $3::jsonb, info = $4::jsonb, last_seen_at = now()
             WHERE name = $1 AND status = 'online'`,
            [p.sender, p.use_cases, JSON.stringify(p.examples), info],
          ),
        false,
      );
      if (touched > 0) {
        this.forgetChangedBy(p);
        return 'present';
      }
    }
    return this.changing(() => this.join(p, kind, info));
  }

  /** A registration, or a heartbeat of a site that was not online: its join or its return, serialised per site. */
  private join(p: NodePresencePayload, kind: 'registration' | 'heartbeat', info: string): Promise<'joined' | 'present' | 'revoked'> {
    return this.db.transaction(async (m) => {
      await m.query(`SELECT pg_advisory_xact_lock(hashtext('node:' || $1))`, [p.sender]);
      const prev: { status: string; recent: boolean }[] = await m.query(
        `SELECT status, last_seen_at > now() - make_interval(secs => $2) AS recent FROM coordinator.nodes WHERE name = $1`,
        [p.sender, this.config.NODE_ONLINE_WINDOW_S],
      );
      if (prev[0]?.status === 'revoked') return 'revoked';
      await m.query(
        `INSERT INTO coordinator.nodes (name, use_cases, examples, status, info, registered_at, last_seen_at)
         VALUES ($1, $2, $3::jsonb, 'online', $4::jsonb, now(), now())
         ON CONFLICT (name) DO UPDATE SET use_cases = EXCLUDED.use_cases, examples = EXCLUDED.examples,
           status = 'online', info = EXCLUDED.info, last_seen_at = now()`,
        [p.sender, p.use_cases, JSON.stringify(p.examples), info],
      );
      const wasOnline = prev[0]?.status === 'online' && (kind === 'heartbeat' || prev[0].recent);
      return wasOnline ? 'present' : 'joined';
    });
  }

  async recordLeaving(node: string): Promise<void> {
    await this.changing(() => this.db.query(`UPDATE coordinator.nodes SET status = 'offline', last_seen_at = now() WHERE name = $1 AND status <> 'revoked'`, [node]));
  }

  /** The admin tool normally marks the site itself; a coordinator repeats it so that the order of events does not matter. */
  async recordRevoked(node: string): Promise<void> {
    await this.changing(() => this.db.query(
      `INSERT INTO coordinator.nodes (name, use_cases, status, revoked_at) VALUES ($1, '{}', 'revoked', now())
       ON CONFLICT (name) DO UPDATE SET status = 'revoked', revoked_at = coalesce(coordinator.nodes.revoked_at, now())`,
      [node],
    ));
  }

  /**
   * Workers serving the use case that were heard from recently and hold training data for it; read
   * again after ONLINE_REUSE_MS, or at once after a presence change this coordinator recorded.
   */
  async online(useCase: string): Promise<OnlineNode[]> {
    const kept = this.recentOnline.get(useCase);
    if (kept && this.now() - kept.at < ONLINE_REUSE_MS) return [...kept.nodes.values()].map((n) => ({ ...n }));
    const at = this.now();
    const changes = this.changes;
    const nodes = await this.readOnline(useCase);
    if (this.changes === changes) this.recentOnline.set(useCase, { at, nodes: new Map(nodes.map((n) => [n.name, { ...n }])) });
    return nodes;
  }

  private async readOnline(useCase: string): Promise<OnlineNode[]> {
    const rows: { name: string; examples: Record<string, { train: number; test: number }> }[] = await this.db.query(
      `SELECT name, examples FROM coordinator.nodes
       WHERE $1 = ANY(use_cases) AND status = 'online' AND last_seen_at > now() - make_interval(secs => $2)
       ORDER BY name`,
      [useCase, this.config.NODE_ONLINE_WINDOW_S],
    );
    return rows
      .map((r) => ({ name: r.name, train: r.examples[useCase]?.train ?? 0, test: r.examples[useCase]?.test ?? 0 }))
      .filter((n) => n.train > 0 || n.test > 0);
  }
}
