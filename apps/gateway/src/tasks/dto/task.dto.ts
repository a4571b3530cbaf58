import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { TASK_STATUSES, TaskStatus } from '../task-status';

export class TaskMetricsDto {
  @ApiProperty({ example: 0.21 }) eval_loss: number;
  @ApiProperty({ example: 0.96 }) eval_accuracy: number;
  @ApiProperty({ example: 30 }) eval_examples: number;
  @ApiProperty({ example: 0.25 }) train_loss: number;
  @ApiProperty({ example: 5 }) rounds: number;
  @ApiPropertyOptional({ example: 2.4, description: 'Differentially private tasks: epsilon of the whole task, at `delta`.' }) epsilon?: number;
  @ApiPropertyOptional({ example: 1e-5 }) delta?: number;
}

export class PrivacySettingsDto {
  @ApiProperty({ enum: ['central', 'local'] }) mode: 'central' | 'local';
  @ApiProperty({ example: 1 }) noise_multiplier: number;
  @ApiProperty({ example: 1 }) clipping_norm: number;
  @ApiProperty({ example: false }) adaptive_clipping: boolean;
  @ApiProperty({ example: 0.5 }) target_clipped_quantile: number;
  @ApiProperty({ example: 0.2 }) clip_norm_lr: number;
  @ApiPropertyOptional({ example: 0.15 }) clipped_count_stddev?: number;
  @ApiProperty({ example: 1e-5 }) delta: number;
  @ApiPropertyOptional({ example: 8 }) epsilon_budget?: number;
}

export class RejectedUpdateDto {
  @ApiProperty({ example: 'site-2' }) node: string;
  @ApiProperty({ example: 'update L2 norm 41.2 exceeds the bound 5' }) reason: string;
}

/** A task as the API shows it: every field of the body, with its settings and state. */
export class TaskDto {
  @ApiProperty({ example: 1 }) id: number;
  @ApiProperty({ example: '1' }) user_id: string;
  @ApiProperty({ example: 'iris' }) use_case: string;
  @ApiProperty({ example: 'iris' }) model_name: string;
  @ApiProperty({ example: 1 }) model_version: number;
  @ApiProperty({ example: 3 }) num_global_iterations: number;
  @ApiProperty({ example: 'test_run' }) run_name: string;
  @ApiProperty({ example: 'Default' }) experiment_name: string;
  @ApiProperty({ example: 'FedAvgM', description: "As the registry spells it; 'fedavg' for tasks that asked for it so (FedAvg)." }) strategy: string;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'number' }, example: { server_learning_rate: 1, server_momentum: 0.9, min_fit_clients: 3, fraction_fit: 1 }, description: 'Every parameter the strategy runs with, defaults applied.' })
  strategy_params: Record<string, number>;
  @ApiProperty({ example: 1 }) min_fit_clients: number;
  @ApiProperty({ example: 1 }) fraction_fit: number;
  @ApiProperty({ example: 5 }) local_epochs: number;
  @ApiProperty({ example: 16 }) batch_size: number;
  @ApiProperty({ example: 0.1 }) learning_rate: number;
  @ApiProperty({ example: 60 }) round_timeout_s: number;
  @ApiProperty({ example: 42 }) seed: number;
  @ApiPropertyOptional({ example: 5, nullable: true, description: "Bound on each update's L2 norm; null: none." }) max_update_norm: number | null;
  @ApiPropertyOptional({ type: PrivacySettingsDto, nullable: true, description: 'Differential privacy, defaults applied; null: none.' }) privacy: PrivacySettingsDto | null;
  @ApiProperty({ enum: TASK_STATUSES, example: 'running' }) status: TaskStatus;
  @ApiPropertyOptional({ example: null, nullable: true, description: 'Why the task failed or was cancelled, or stopped before its last round (a privacy budget reached).' }) reason: string | null;
  @ApiProperty({ example: 2, description: 'Last completed round.' }) current_round: number;
  @ApiPropertyOptional({ type: TaskMetricsDto, nullable: true }) metrics: TaskMetricsDto | null;
  @ApiPropertyOptional({ example: 'trained_iris', nullable: true }) result_model_name: string | null;
  @ApiPropertyOptional({ example: 1, nullable: true }) result_model_version: number | null;
  @ApiProperty({ example: '2026-11-28T12:00:00.000Z' }) created_at: string;
  @ApiPropertyOptional({ example: '2026-11-28T12:00:01.000Z', nullable: true }) started_at: string | null;
  @ApiPropertyOptional({ example: null, nullable: true }) finished_at: string | null;
  @ApiPropertyOptional({ example: null, nullable: true }) cancel_requested_at: string | null;
  @ApiProperty({ example: '2026-11-28T12:00:02.000Z' }) updated_at: string;
  @ApiPropertyOptional({ example: 'c0a8012e-5f1c-4e59-a1b8-1f2f4b1d7e0a', nullable: true, description: "Correlation id of the request that created the task: every app's log lines about the task carry it." })
  correlation_id: string | null;
}

export class RoundDto {
  @ApiProperty({ example: 1 }) round: number;
  @ApiProperty({ example: 3 }) participants: number;
  @ApiProperty({ example: 120, description: 'Training examples behind the round.' }) examples: number;
  @ApiProperty({ example: 0.52 }) train_loss: number;
  @ApiProperty({ example: 0.47 }) eval_loss: number;
  @ApiProperty({ example: 0.93 }) eval_accuracy: number;
  @ApiProperty({ example: 30 }) eval_examples: number;
  @ApiProperty({ example: 140 }) duration_ms: number;
  @ApiProperty({ example: '2026-11-28T12:00:01.000Z' }) started_at: string;
  @ApiProperty({ example: '2026-11-28T12:00:01.140Z' }) finished_at: string;
  @ApiPropertyOptional({ example: 1.3, description: 'Differentially private tasks: epsilon spent up to and including this round.' }) epsilon?: number;
  @ApiPropertyOptional({ type: [RejectedUpdateDto], description: 'Updates refused in this round, never aggregated.' }) rejected?: RejectedUpdateDto[];
}

export class DeleteTasksResultDto {
  @ApiProperty({ example: 'All tasks deleted' }) message: string;
  @ApiProperty({ example: 4, description: 'Tasks removed.' }) deleted: number;
  @ApiProperty({ example: 1, description: 'Of those, pending or running tasks that were cancelled first.' }) cancelled: number;
}

export class PongDto {
  @ApiProperty({ example: 'Pong' }) message: string;
}

export class ErrorBodyDto {
  @ApiProperty({ example: 404 }) statusCode: number;
  @ApiProperty({ example: 'Not Found' }) error: string;
  @ApiProperty({ example: 'task 42 not found' }) message: string;
  @ApiPropertyOptional({ example: [{ field: 'model_version', reason: 'model_version must be an integer number' }] })
  details?: { field: string; reason: string }[];
  @ApiProperty({ example: 'c0a8012e-5f1c-4e59-a1b8-1f2f4b1d7e0a' }) correlation_id: string;
}
