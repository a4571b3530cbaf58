export const ROLES = ['admin', 'scientist', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

/** Who is calling: the verified subject and roles, never taken from the request body. */
export interface Principal {
  subject: string;
  roles: Role[];
  via: 'jwt' | 'api-key' | 'none';
}

export function isAdmin(p: Principal): boolean {
  return p.roles.includes('admin');
}

/** Tasks a principal may see: admins and viewers all, scientists their own. */
export function seesAllTasks(p: Principal): boolean {
  return p.roles.includes('admin') || p.roles.includes('viewer');
}
