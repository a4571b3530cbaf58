import { Type } from 'class-transformer';
import {
  IsArray,
  IsIn,
  IsInt,
  IsNumber,
  IsObject,
  IsOptional,
  IsString,
  Matches,
  Min,
  ValidateNested,
  IsNotEmpty,
  MaxLength,
} from 'class-validator';
import { WORD_PATTERN } from './messages';
import { TaskSpec } from './task-spec';

/**
 * Every message names its task, its round and its sender, so that duplicates
 * and late arrivals are recognised. Messages outside a task use task_id 0.
 */
export class Envelope {
  @IsInt() @Min(0) task_id: number;
  @IsInt() @Min(0) round: number;
  @Matches(WORD_PATTERN) sender: string;
  /** The task's correlation id, so every app's log lines about it can be found together. */
  @IsOptional() @IsString() @MaxLength(100) correlation_id?: string;
}

export class TaskSubmittedPayload extends Envelope {
  @ValidateNested() @Type(() => TaskSpec) spec: TaskSpec;
}

export class TaskCancelRequestedPayload extends Envelope {
  @IsOptional() @IsString() reason?: string;
}

export class TaskStartedPayload extends Envelope {
  @IsString() coordinator: string;
}

export class FinalMetrics {
  @IsNumber() eval_loss: number;
  @IsNumber() eval_accuracy: number;
  @IsInt() @Min(0) eval_examples: number;
  @IsNumber() train_loss: number;
  @IsInt() @Min(0) rounds: number;
}

export class TaskSucceededPayload extends Envelope {
  @IsString() @IsNotEmpty() model_name: string;
  @IsInt() @Min(1) model_version: number;
  @ValidateNested() @Type(() => FinalMetrics) metrics: FinalMetrics;
}

export class TaskFailedPayload extends Envelope {
  @IsString() @IsNotEmpty() reason: string;
}

export class TaskCancelledPayload extends Envelope {
  @IsOptional() @IsString() reason?: string;
}

/** One round's figures, as stored by the coordinator and shown by the gateway. */
export class RoundFigures {
  @IsInt() @Min(0) participants: number;
  @IsInt() @Min(0) examples: number;
  @IsNumber() train_loss: number;
  @IsNumber() eval_loss: number;
  @IsNumber() eval_accuracy: number;
  @IsInt() @Min(0) eval_examples: number;
  @IsString() started_at: string;
  @IsString() finished_at: string;
  @IsInt() @Min(0) duration_ms: number;
}

export class RoundCompletedPayload extends Envelope {
  @IsInt() @Min(1) num_rounds: number;
  @ValidateNested() @Type(() => RoundFigures) figures: RoundFigures;
}

export class UseCaseExamples {
  @IsInt() @Min(0) train: number;
  @IsInt() @Min(0) test: number;
}

/** Registration and heartbeat: who the worker is and what data it serves. */
export class NodePresencePayload extends Envelope {
  @IsArray() @Matches(WORD_PATTERN, { each: true }) use_cases: string[];
  /** use case -> example counts of the local train/test splits */
  @IsObject() examples: Record<string, UseCaseExamples>;
  @IsOptional() @IsString() version?: string;
  /**
   * use case -> why this site refuses to serve it (its data does not fit the
   * use case's schema, or the site does not know the use case); absent or
   * empty when it refuses none.
   */
  @IsOptional() @IsObject() rejected_use_cases?: Record<string, string>;
}

/** `sender` is the admin tool; `node` the site whose broker user was removed. */
export class NodeRevokedPayload extends Envelope {
  @Matches(WORD_PATTERN) node: string;
}

/** A model package for one worker; the attachment is the package bundle. */
export class ModelPackagePayload extends Envelope {
  @Matches(/^[0-9a-f]{64}$/) package_sha256: string;
}

export class FitConfig {
  @IsInt() @Min(1) local_epochs: number;
  @IsInt() @Min(1) batch_size: number;
  @IsNumber() @Min(0) learning_rate: number;
  @IsInt() @Min(0) seed: number;
}

/**
 * A round broadcast (fit or evaluate): published once, fanned out by the
 * broker to every worker of the use case; those not listed ignore it.
 * The attachment is the global weights (safetensors).
 */
export class RoundInstructionPayload extends Envelope {
  @Matches(WORD_PATTERN) use_case: string;
  @IsArray() @Matches(WORD_PATTERN, { each: true }) participants: string[];
  @Matches(/^[0-9a-f]{64}$/) package_sha256: string;
  @Matches(/^[0-9a-f]{64}$/) weights_sha256: string;
  /** routing key on which the coordinator waits for this round's results */
  @IsString() @IsNotEmpty() reply_to: string;
  @IsOptional() @ValidateNested() @Type(() => FitConfig) config?: FitConfig;
}

export class FitResultPayload extends Envelope {
  @IsIn(['ok', 'error']) status: 'ok' | 'error';
  @IsOptional() @IsString() error?: string;
  @IsInt() @Min(0) examples: number;
  @IsNumber() train_loss: number;
  @IsInt() @Min(0) duration_ms: number;
  @IsOptional() @Matches(/^[0-9a-f]{64}$/) weights_sha256?: string;
}

export class EvaluateResultPayload extends Envelope {
  @IsIn(['ok', 'error']) status: 'ok' | 'error';
  @IsOptional() @IsString() error?: string;
  @IsInt() @Min(0) examples: number;
  @IsNumber() loss: number;
  @IsNumber() accuracy: number;
  @IsInt() @Min(0) duration_ms: number;
}
