import { IsInt, IsNumber, IsString, Matches, Max, Min } from 'class-validator';
import { WORD_PATTERN } from '@fl/contracts';
import { BaseConfig } from '@fl/runtime';

export class GatewayConfig extends BaseConfig {
  @IsInt() @Min(0) @Max(65535) PORT = 8000;
  @IsString() HOST = '0.0.0.0';
  /** Names this gateway's event queue (fl.gateway.<id>); replicas need distinct ids. */
  @Matches(WORD_PATTERN) GATEWAY_ID = 'gateway';
  /** GET /nodes shows a worker online for this long after its last heartbeat (as the coordinator counts it). */
  @IsNumber() @Min(1) @Max(3600) NODE_ONLINE_WINDOW_S = 30;
  /** A task still pending this long is handed to the coordinators again (its submission may have gone nowhere). */
  @IsNumber() @Min(0.1) @Max(86400) TASK_RESUBMIT_S = 30;
}

export const GATEWAY_CONFIG = Symbol('GATEWAY_CONFIG');
