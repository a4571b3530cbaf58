import { rolesFrom } from './jwt-verifier';

describe('roles from a token', () => {
  it('reads an array or a space-separated string at a dotted claim path, keeping only known roles', () => {
    expect(rolesFrom({ roles: ['scientist', 'other'] }, 'roles')).toEqual(['scientist']);
    expect(rolesFrom({ realm_access: { roles: ['viewer', 'admin', 'offline_access'] } }, 'realm_access.roles')).toEqual(['admin', 'viewer']);
    expect(rolesFrom({ scope: 'openid viewer' }, 'scope')).toEqual(['viewer']);
  });

  it('gives no role when the claim is missing or of another type', () => {
    expect(rolesFrom({}, 'roles')).toEqual([]);
    expect(rolesFrom({ roles: 42 }, 'roles')).toEqual([]);
    expect(rolesFrom({ realm_access: 'admin' }, 'realm_access.roles')).toEqual([]);
  });
});
