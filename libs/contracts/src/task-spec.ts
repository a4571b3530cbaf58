import { Type } from 'class-transformer';
import {
  IsIn,
  IsInt,
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

export const STRATEGIES = ['fedavg'] as const;
export type StrategyName = (typeof STRATEGIES)[number];

/** Federated-learning settings of a task, every one with a default. */
export class FlSettings {
  @IsIn(STRATEGIES as unknown as string[]) strategy: StrategyName = 'fedavg';
  @IsInt() @Min(1) @Max(10_000) min_fit_clients = 1;
  @IsNumber() @Min(0) @Max(1) fraction_fit = 1;
  @IsInt() @Min(1) @Max(10_000) local_epochs = 10;
  @IsInt() @Min(1) @Max(1_000_000) batch_size = 8;
  @IsNumber() @Min(0) @Max(100) learning_rate = 0.3;
  @IsNumber() @Min(0.1) @Max(86_400) round_timeout_s = 60;
  @IsInt() @Min(0) seed = 42;
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
