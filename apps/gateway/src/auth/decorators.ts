import { createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';
import { Principal, Role } from './principal';

export { Public, PUBLIC_ROUTE } from '@fl/runtime';
export const REQUIRED_ROLES = 'fl:roles';

/** Any one of these roles is enough. */
export const Roles = (...roles: Role[]) => SetMetadata(REQUIRED_ROLES, roles);

/** The authenticated caller, as the AuthGuard put it on the request. */
export const Caller = createParamDecorator((_: unknown, ctx: ExecutionContext): Principal => ctx.switchToHttp().getRequest().principal);
