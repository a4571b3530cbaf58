import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class StrategyParameterDto {
  @ApiProperty({ example: 'server_momentum' }) name: string;
  @ApiProperty({ enum: ['number', 'integer'], example: 'number' }) type: 'number' | 'integer';
  @ApiProperty({ example: 'Server-side momentum factor; 0 turns momentum off.' }) description: string;
  @ApiPropertyOptional({ example: 0, description: 'Absent when the parameter is required.' }) default?: number;
  @ApiPropertyOptional({ example: 0 }) minimum?: number;
  @ApiPropertyOptional() exclusiveMinimum?: number;
  @ApiPropertyOptional() maximum?: number;
  @ApiPropertyOptional({ example: 1 }) exclusiveMaximum?: number;
}

export class StrategyDto {
  @ApiProperty({ example: 'FedAvgM', description: 'The name POST /tasks takes as `strategy`.' }) name: string;
  @ApiProperty({ example: 'FedAvg with server-side momentum on the pseudo-gradient.' }) description: string;
  @ApiProperty({ example: 'Hsu et al. 2019, Measuring the Effects of Non-Identical Data Distribution for Federated Visual Classification' }) reference: string;
  @ApiProperty({ example: true, description: 'Folds updates in as they arrive: coordinator memory independent of the number of workers.' }) streaming: boolean;
  @ApiProperty({ example: true, description: 'The server step is applied to an example-weighted average.' }) linear: boolean;
  @ApiProperty({ type: StrategyParameterDto, isArray: true, description: 'What POST /tasks takes as `strategy_params`, with defaults and bounds.' }) parameters: StrategyParameterDto[];
  @ApiProperty({ example: true, description: 'Whether a task may choose it here.' }) available: boolean;
  @ApiPropertyOptional({ example: null, nullable: true, description: 'How it runs differently here from the publication, or why it is not available.' }) limitation: string | null;
}
