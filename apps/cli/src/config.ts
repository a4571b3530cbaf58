import { IsOptional, IsString, Matches } from 'class-validator';
import { BaseConfig } from '@fl/runtime';

export class CliConfig extends BaseConfig {
  /** Data folder of the embedded PostgreSQL used when DATABASE_URL is unset. */
  @IsString() EMBEDDED_PG_DIR = './.data/pglite';
  /**
   * RabbitMQ's management API with an administrator's credentials, e.g. http://admin:secret@rabbitmq:15672:
   * `nodes enroll` and `nodes revoke` create and delete site users through it. Unset: they print the
   * rabbitmqctl commands to run on the broker host instead.
   */
  @IsOptional() @Matches(/^https?:\/\/.+/, { message: 'RABBITMQ_MANAGEMENT_URL must be an http:// or https:// URL' }) RABBITMQ_MANAGEMENT_URL?: string;
}
