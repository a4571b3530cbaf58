import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayNotEmpty,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsNumber,
  IsObject,
  IsOptional,
  IsString,
  Matches,
  Max,
  Min,
  ValidateNested,
  IsNotEmpty,
  MaxLength,
} from 'class-validator';
import { WORD_PATTERN } from './messages';
import { TaskSpec } from './task-spec';
import { NamesMatching } from './validate';

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

/** At most this many task ids in one tasks.deleted message: the gateway sends more in several. */
export const TASKS_DELETED_MAX_IDS = 1000;

/** Tasks the gateway deleted; task_id and round are 0 (the message is about several tasks). Ids are PostgreSQL integers. */
export class TasksDeletedPayload extends Envelope {
  @IsArray() @ArrayNotEmpty() @ArrayMaxSize(TASKS_DELETED_MAX_IDS) @IsInt({ each: true }) @Min(1, { each: true }) @Max(2_147_483_647, { each: true })
  task_ids: number[];
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
  /** Differentially private tasks: the (epsilon, delta) the accountant gives for the whole task. */
  @IsOptional() @IsNumber() epsilon?: number;
  @IsOptional() @IsNumber() delta?: number;
}

export class TaskSucceededPayload extends Envelope {
  @IsString() @IsNotEmpty() model_name: string;
  @IsInt() @Min(1) model_version: number;
  @ValidateNested() @Type(() => FinalMetrics) metrics: FinalMetrics;
  /** Why the task stopped before its last round (a privacy budget reached), if it did. */
  @IsOptional() @IsString() reason?: string;
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
  /** Where the coordinator's operator has held-out data (SERVER_EVAL_DATA): the new weights evaluated on it. */
  @IsOptional() @IsNumber() server_eval_loss?: number;
  @IsOptional() @IsNumber() server_eval_accuracy?: number;
  @IsOptional() @IsInt() @Min(0) server_eval_examples?: number;
  /** Differentially private tasks: epsilon spent by the task up to and including this round. */
  @IsOptional() @IsNumber() epsilon?: number;
  /** Updates refused for this round (wrong shape, NaN, too large, ...), with the reason; never aggregated. */
  @IsOptional() @IsArray() @ValidateNested({ each: true }) @Type(() => RejectedUpdate) rejected?: RejectedUpdate[];
}

export class RejectedUpdate {
  @Matches(WORD_PATTERN) node: string;
  @IsString() reason: string;
}

export class RoundCompletedPayload extends Envelope {
  @IsInt() @Min(1) num_rounds: number;
  @ValidateNested() @Type(() => RoundFigures) figures: RoundFigures;
}

/** Most rounds one rounds.completed event carries (a task resumed after many quick rounds sends its rounds in several). */
export const MAX_ROUNDS_PER_EVENT = 256;

export class CompletedRound {
  @IsInt() @Min(1) round: number;
  @ValidateNested() @Type(() => RoundFigures) figures: RoundFigures;
}

/** Several completed rounds of one task, oldest first; the envelope's `round` is the last of them. */
export class RoundsCompletedPayload extends Envelope {
  @IsInt() @Min(1) num_rounds: number;
  @IsArray() @ArrayNotEmpty() @ArrayMaxSize(MAX_ROUNDS_PER_EVENT) @ValidateNested({ each: true }) @Type(() => CompletedRound) rounds: CompletedRound[];
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

/**
 * A use case stored at the gateway (POST /use-cases), for edge workers. The
 * definition is configuration in the use case file format, not a tensor: the
 * worker checks it against the use case schema itself.
 */
export class UseCaseDefinedPayload extends Envelope {
  @IsObject() definition: Record<string, unknown>;
}

/** A model package for one worker; the attachment is the package bundle. */
export class ModelPackagePayload extends Envelope {
  @Matches(/^[0-9a-f]{64}$/) package_sha256: string;
}

export class FitConfig {
  @IsInt() @Min(1) local_epochs: number;
  @IsInt() @Min(1) batch_size: number;
  /** The workers' local learning rate: the task's learning_rate (for the FedOpt family also its eta_l). */
  @IsNumber() @Min(0) learning_rate: number;
  @IsInt() @Min(0) seed: number;
  /** FedProx: train with (proximal_mu / 2) ||w - w_global||^2 added to the loss, w_global being the round's weights. */
  @IsOptional() @IsNumber() @Min(0) proximal_mu?: number;
  /** QFedAvg: report loss_before_fit (one evaluation pass over the training rows before training). */
  @IsOptional() @IsBoolean() report_loss_before_fit?: boolean;
  /** Local differential privacy: the worker clips its update's difference to the global weights to this L2 norm ... */
  @IsOptional() @IsNumber() @Min(0) dp_clipping_norm?: number;
  /** ... and adds Gaussian noise of this many times the clipping norm. */
  @IsOptional() @IsNumber() @Min(0) dp_noise_multiplier?: number;
}

/**
 * A round broadcast (fit or evaluate): published once, fanned out by the
 * broker to every worker of the use case; those not listed ignore it.
 * The attachment is the global weights (safetensors).
 */
export class RoundInstructionPayload extends Envelope {
  @Matches(WORD_PATTERN) use_case: string;
  @NamesMatching(WORD_PATTERN) participants: string[];
  @Matches(/^[0-9a-f]{64}$/) package_sha256: string;
  @Matches(/^[0-9a-f]{64}$/) weights_sha256: string;
  /** routing key on which the coordinator waits for this round's results */
  @IsString() @IsNotEmpty() reply_to: string;
  @IsOptional() @ValidateNested() @Type(() => FitConfig) config?: FitConfig;
  /**
   * Evaluate: keep these weights for the task's next fit, which then comes without them when every
   * site asked to fit confirmed keeping them (EvaluateResultPayload.kept_weights_sha256). A site that
   * does not know this field ignores it, confirms nothing and keeps getting the weights.
   */
  @IsOptional() @IsBoolean() keep_weights?: boolean;
  /** Fit: no weights attached: train from those kept at the last evaluation, `weights_sha256` names them. */
  @IsOptional() @IsBoolean() kept_weights?: boolean;
  /**
   * Fit: the weights attached are the result of round `evaluates_round`, whose evaluation travels with
   * this fit: a site listed in `evaluators` first evaluates them on its held-out rows and puts the
   * figures in its answer (FitResultPayload.evaluation). A site that does not know these fields only
   * trains; the coordinator then asks it for the evaluation on its own.
   */
  @IsOptional() @IsInt() @Min(1) evaluates_round?: number;
  @IsOptional() @NamesMatching(WORD_PATTERN) evaluators?: string[];
}

export class EvaluateResultPayload extends Envelope {
  @IsIn(['ok', 'error']) status: 'ok' | 'error';
  @IsOptional() @IsString() error?: string;
  @IsInt() @Min(0) examples: number;
  @IsNumber() loss: number;
  @IsNumber() accuracy: number;
  @IsInt() @Min(0) duration_ms: number;
  /** The evaluated weights' SHA-256, when the instruction asked to keep them and this site did. */
  @IsOptional() @Matches(/^[0-9a-f]{64}$/) kept_weights_sha256?: string;
}

export class FitResultPayload extends Envelope {
  @IsIn(['ok', 'error']) status: 'ok' | 'error';
  @IsOptional() @IsString() error?: string;
  @IsInt() @Min(0) examples: number;
  @IsNumber() train_loss: number;
  @IsInt() @Min(0) duration_ms: number;
  @IsOptional() @Matches(/^[0-9a-f]{64}$/) weights_sha256?: string;
  /** The received global weights' loss on the site's training rows, before training; sent when the fit config asks for it. */
  @IsOptional() @IsNumber() loss_before_fit?: number;
  /**
   * The global weights this site trained from (the instruction's `weights_sha256`): an answer to an
   * earlier instruction for the same round, from other weights, is told apart and ignored.
   */
  @IsOptional() @Matches(/^[0-9a-f]{64}$/) trained_from?: string;
  /**
   * The evaluation of the received weights, when the instruction listed this site in `evaluators`:
   * the answer an evaluate instruction would have had, its round the instruction's `evaluates_round`.
   */
  @IsOptional() @ValidateNested() @Type(() => EvaluateResultPayload) evaluation?: EvaluateResultPayload;
}

/**
 * Before round 1 (round 0): asks the listed sites of the use case for the
 * count, sums and sums of squares of their training rows per model input,
 * from which the coordinator computes the task's standardisation.
 */
export class StatsRequestPayload extends Envelope {
  @Matches(WORD_PATTERN) use_case: string;
  @NamesMatching(WORD_PATTERN) participants: string[];
  /** The model's number of inputs: a site whose rows have another width answers with an error. */
  @IsInt() @Min(1) features: number;
  @IsString() @IsNotEmpty() reply_to: string;
}

/** The attachment is little-endian float64: `features` sums, then `features` sums of squares. */
export class StatsResultPayload extends Envelope {
  @IsIn(['ok', 'error']) status: 'ok' | 'error';
  @IsOptional() @IsString() error?: string;
  @IsInt() @Min(0) examples: number;
}
