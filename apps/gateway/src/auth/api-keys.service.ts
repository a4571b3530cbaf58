import { createHash, randomBytes } from 'node:crypto';
import { Inject, Injectable, NotFoundException } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { DATA_SOURCE, rowsOf } from '@fl/runtime';
import { Principal, Role } from './principal';

const KEY_PREFIX = 'flk_';

export interface ApiKeyInfo {
  id: number;
  name: string;
  subject: string;
  role: Role;
  key_prefix: string;
  created_by: string;
  created_at: string;
  revoked_at: string | null;
}

interface ApiKeyRow extends Omit<ApiKeyInfo, 'created_at' | 'revoked_at'> {
  created_at: Date;
  revoked_at: Date | null;
}

const info = (r: ApiKeyRow): ApiKeyInfo => ({ ...r, created_at: r.created_at.toISOString(), revoked_at: r.revoked_at?.toISOString() ?? null });

/** A key is 32 random bytes; a fast hash is enough to store it (nothing to brute-force), compared through a unique index. */
function hashOf(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** API keys for automation, created and revoked by admins, stored hashed, shown once. */
@Injectable()
export class ApiKeysService {
  constructor(@Inject(DATA_SOURCE) private readonly db: DataSource) {}

  async create(name: string, subject: string, role: Role, createdBy: string): Promise<{ key: string; info: ApiKeyInfo }> {
    const key = `${KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
    const rows: ApiKeyRow[] = await this.db.query(
      `INSERT INTO gateway.api_keys (name, subject, role, key_prefix, key_hash, created_by) VALUES ($1, $2, $3, $4, $5, $6)
       RETURNING id, name, subject, role, key_prefix, created_by, created_at, revoked_at`,
      [name, subject, role, key.slice(0, KEY_PREFIX.length + 6), hashOf(key), createdBy],
    );
    return { key, info: info(rows[0]) };
  }

  async list(): Promise<ApiKeyInfo[]> {
    const rows: ApiKeyRow[] = await this.db.query(
      `SELECT id, name, subject, role, key_prefix, created_by, created_at, revoked_at FROM gateway.api_keys ORDER BY id`,
    );
    return rows.map(info);
  }

  async revoke(id: number): Promise<ApiKeyInfo> {
    const rows = rowsOf<ApiKeyRow>(await this.db.query(
      `UPDATE gateway.api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1
       RETURNING id, name, subject, role, key_prefix, created_by, created_at, revoked_at`,
      [id],
    ));
    if (!rows.length) throw new NotFoundException(`API key ${id} not found`);
    return info(rows[0]);
  }

  /** The principal of a valid, unrevoked key; null otherwise. */
  async verify(key: string): Promise<Principal | null> {
    if (!key.startsWith(KEY_PREFIX)) return null;
    const rows: { subject: string; role: Role }[] = await this.db.query(
      `SELECT subject, role FROM gateway.api_keys WHERE key_hash = $1 AND revoked_at IS NULL`,
      [hashOf(key)],
    );
    return rows.length ? { subject: rows[0].subject, roles: [rows[0].role], via: 'api-key' } : null;
  }
}
