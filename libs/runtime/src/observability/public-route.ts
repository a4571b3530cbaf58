import { SetMetadata } from '@nestjs/common';

export const PUBLIC_ROUTE = 'fl:public';

/** Reachable without credentials: ping, health, metrics. */
export const Public = () => SetMetadata(PUBLIC_ROUTE, true);
