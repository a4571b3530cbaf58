import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  IsInt,
  IsNotEmpty,
  IsNumber,
  IsObject,
  IsOptional,
  IsString,
  Length,
  Matches,
  Max,
  MaxLength,
  Min,
  Validate,
  ValidationArguments,
  ValidatorConstraint,
  ValidatorConstraintInterface,
} from 'class-validator';
import { listStrategies, strategySpec } from '@fl/aggregation';
import { DEFAULT_FL_SETTINGS, LEGACY_STRATEGY, WORD_PATTERN } from '@fl/contracts';

/** A name the strategy registry knows, in any case; its parameters are checked by the service against the registry. */
@ValidatorConstraint({ name: 'knownStrategy' })
class KnownStrategy implements ValidatorConstraintInterface {
  validate(value: unknown): boolean {
    try {
      strategySpec(String(value));
      return true;
    } catch {
      return false;
    }
  }

  defaultMessage(args: ValidationArguments): string {
    return `strategy must be one of ${listStrategies().map((s) => s.name).join(', ')} (any case), got ${JSON.stringify(args.value)}`;
  }
}

/**
 * The predecessor's task body, unchanged, plus optional federated-learning
 * settings named as Flower names them.
 */
export class CreateTaskDto {
  @ApiProperty({ example: '1', description: 'Who submits the task.' })
  @IsString() @IsNotEmpty() @MaxLength(200)
  user_id: string;

  @ApiProperty({ example: 'iris', description: 'Which data the task trains on: the edge workers serving this use case take part.' })
  @IsString() @Matches(WORD_PATTERN, { message: 'use_case must be 1-64 letters, digits, _ or -' })
  use_case: string;

  @ApiProperty({ example: 'iris', description: 'Registered model to start from.' })
  // MLflow's own rule (1-256 characters, no control characters), so that names
  // users already have there keep working; a backend that is stricter answers
  // 400 with its reason.
  @IsString() @Length(1, 256) @Matches(/^[^\u0000-\u001f\u007f]+$/, { message: 'model_name must not contain control characters' })
  model_name: string;

  @ApiProperty({ example: 1, minimum: 1, description: 'Version of the registered model.' })
  @IsInt() @Min(1)
  model_version: number;

  @ApiProperty({ example: 3, minimum: 1, maximum: 10000, description: 'Number of federated rounds.' })
  @IsInt() @Min(1) @Max(10000)
  num_global_iterations: number;

  @ApiProperty({ example: 'test_run', description: 'Name of the training run.' })
  @IsString() @MaxLength(200)
  run_name: string;

  @ApiProperty({ example: 'Default', description: 'Experiment the run belongs to.' })
  @IsString() @MaxLength(200)
  experiment_name: string;

  @ApiPropertyOptional({
    enum: [...listStrategies().map((s) => s.name), LEGACY_STRATEGY],
    example: 'FedAvgM',
    default: DEFAULT_FL_SETTINGS.strategy,
    description: "Aggregation strategy, named as Flower names it (any case; 'fedavg' is FedAvg). GET /strategies lists them with their parameters.",
  })
  @IsOptional() @IsString() @MaxLength(64) @Validate(KnownStrategy)
  strategy?: string;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { type: 'number' },
    example: { server_momentum: 0.9 },
    description: "The strategy's parameters (GET /strategies); the ones left out take their defaults. min_fit_clients and fraction_fit may be given here or at the top level.",
  })
  @IsOptional() @IsObject()
  strategy_params?: Record<string, unknown>;

  @ApiPropertyOptional({ example: 3, minimum: 1, default: DEFAULT_FL_SETTINGS.min_fit_clients, description: 'Fewest edge workers a round may train on; the task waits for them.' })
  @IsOptional() @IsInt() @Min(1) @Max(10000)
  min_fit_clients?: number;

  @ApiPropertyOptional({ example: 1, minimum: 0, maximum: 1, default: DEFAULT_FL_SETTINGS.fraction_fit, description: 'Fraction of the available edge workers sampled each round.' })
  @IsOptional() @IsNumber() @Min(0) @Max(1)
  fraction_fit?: number;

  @ApiPropertyOptional({ example: 5, minimum: 1, default: DEFAULT_FL_SETTINGS.local_epochs, description: 'Passes over its data each worker makes per round.' })
  @IsOptional() @IsInt() @Min(1) @Max(10000)
  local_epochs?: number;

  @ApiPropertyOptional({ example: 16, minimum: 1, default: DEFAULT_FL_SETTINGS.batch_size, description: 'Mini-batch size of local training.' })
  @IsOptional() @IsInt() @Min(1) @Max(1000000)
  batch_size?: number;

  @ApiPropertyOptional({ example: 0.1, minimum: 0, default: DEFAULT_FL_SETTINGS.learning_rate, description: "The workers' learning rate in local training; for FedAdagrad, FedAdam and FedYogi also their eta_l (give it in either place)." })
  @IsOptional() @IsNumber() @Min(0) @Max(100)
  learning_rate?: number;

  @ApiPropertyOptional({ example: 60, minimum: 0.1, default: DEFAULT_FL_SETTINGS.round_timeout_s, description: 'Seconds a round waits for the workers it chose.' })
  @IsOptional() @IsNumber() @Min(0.1) @Max(86400)
  round_timeout_s?: number;

  @ApiPropertyOptional({ example: 42, minimum: 0, default: DEFAULT_FL_SETTINGS.seed, description: 'Seed for sampling and local shuffling.' })
  @IsOptional() @IsInt() @Min(0)
  seed?: number;

  @ApiPropertyOptional({
    example: 5,
    minimum: 0,
    description: "Bound on the L2 norm of each update's difference to the global weights: a larger update is refused, recorded on the round with the reason, and never aggregated.",
  })
  @IsOptional() @IsNumber() @Min(0)
  max_update_norm?: number;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    example: { mode: 'central', noise_multiplier: 1.0, clipping_norm: 1.0, delta: 1e-5, epsilon_budget: 8 },
    description:
      'Client-level differential privacy (DP-FedAvg): each update\'s difference to the global weights is clipped to `clipping_norm` and Gaussian noise of ' +
      '`noise_multiplier` x `clipping_norm` is added, by the coordinator to the sum (`mode: central`, strategies that average) or by each worker to its own ' +
      'update (`mode: local`). `adaptive_clipping` (central) moves the clipping norm towards the `target_clipped_quantile` of update norms at rate ' +
      '`clip_norm_lr` (Andrew et al. 2021), with `clipped_count_stddev` noise on the count. An RDP accountant reports epsilon at `delta` (default 1e-5) per ' +
      'round and for the task; with `epsilon_budget` the task stops, successfully and saying why, before a round that would exceed it.',
  })
  @IsOptional() @IsObject()
  privacy?: Record<string, unknown>;
}
