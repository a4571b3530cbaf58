import { Type } from 'class-transformer';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsObject,
  IsNumber,
  IsString,
  Matches,
  Max,
  Min,
  ValidateNested,
  IsNotEmpty,
  IsOptional,
  MaxLength,
} from 'class-validator';
import { WORD_PATTERN } from './messages';

/** The one strategy before tasks could choose theirs; still accepted, and shown as written. */
export const LEGACY_STRATEGY = 'fedavg';

/**
 * Client-level differential privacy of a task (DP-FedAvg), as the gateway
 * resolved it (defaults applied); names follow Flower's DP wrappers, plus the
 * accountant's delta and an optional budget on epsilon.
 */
export class PrivacySettings {
  @IsIn(['central', 'local']) mode: 'central' | 'local';
  @IsNumber() @Min(0) noise_multiplier: number;
  @IsNumber() clipping_norm: number;
  @IsBoolean() adaptive_clipping: boolean;
  @IsNumber() target_clipped_quantile: number;
  @IsNumber() clip_norm_lr: number;
  @IsOptional() @IsNumber() clipped_count_stddev?: number;
  /** delta of the (epsilon, delta) guarantee the accountant reports. */
  @IsNumber() delta: number;
  /** The task stops, successfully, before a round that would take epsilon beyond this. */
  @IsOptional() @IsNumber() epsilon_budget?: number;
}

/** Federated-learning settings of a task, every one with a default. */
export class FlSettings {
  /** A strategy of the registry in libs/aggregation (its name in any case); the gateway and the coordinator check it there. */
  @IsString() @Matches(/^[A-Za-z][A-Za-z0-9]{0,63}$/) strategy: string = LEGACY_STRATEGY;
  /** The strategy's parameters as the registry resolved them (defaults applied); absent for tasks stored before strategies could be chosen. */
  @IsOptional() @IsObject() strategy_params?: Record<string, number>;
  @IsInt() @Min(1) @Max(10_000) min_fit_clients = 1;
  @IsNumber() @Min(0) @Max(1) fraction_fit = 1;
  @IsInt() @Min(1) @Max(10_000) local_epochs = 10;
  @IsInt() @Min(1) @Max(1_000_000) batch_size = 8;
  @IsNumber() @Min(0) @Max(100) learning_rate = 0.3;
  @IsNumber() @Min(0.1) @Max(86_400) round_timeout_s = 60;
  @IsInt() @Min(0) seed = 42;
  /** Updates whose difference to the global weights has a larger L2 norm are refused (recorded on the round, never aggregated). */
  @IsOptional() @IsNumber() @Min(0) max_update_norm?: number;
  @IsOptional() @ValidateNested() @Type(() => PrivacySettings) privacy?: PrivacySettings;
}

export const DEFAULT_FL_SETTINGS: Readonly<FlSettings> = Object.freeze(new FlSettings());

/** What a coordinator needs to run a task; carried by task.submitted. */
export class TaskSpec {
  @IsInt() @Min(1) task_id: number;
  @IsString() @IsNotEmpty() user_id: string;
  @Matches(WORD_PATTERN) use_case: string;
  @IsString() @IsNotEmpty() model_name: string;
  @IsInt() @Min(1) model_version: number;
  @IsInt() @Min(1) num_global_iterations: number;
  @IsString() run_name: string;
  @IsString() experiment_name: string;
  @ValidateNested() @Type(() => FlSettings) settings: FlSettings;
  /** Of the request that created the task: logged with everything done for it. */
  @IsOptional() @IsString() @MaxLength(100) correlation_id?: string;
}
