import { IsString } from 'class-validator';
import { BaseConfig } from '@fl/runtime';

export class CliConfig extends BaseConfig {
  /** Data folder of the embedded PostgreSQL used when DATABASE_URL is unset. */
  @IsString() EMBEDDED_PG_DIR = './.data/pglite';
}
