import { Controller, Get, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiProperty, ApiPropertyOptional, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, Max, Min } from 'class-validator';
import { Roles } from '../auth/decorators';
import { AuditEvent, AuditLog } from './audit.service';

export class AuditQueryDto {
  @ApiPropertyOptional({ example: 100, minimum: 1, maximum: 1000, default: 100 })
  @IsOptional() @Type(() => Number) @IsInt() @Min(1) @Max(1000)
  limit?: number;

  @ApiPropertyOptional({ example: 5120, description: 'Only events older than this id (the next page).' })
  @IsOptional() @Type(() => Number) @IsInt() @Min(1)
  before?: number;
}

export class AuditEventDto {
  @ApiProperty({ example: '5121' }) id: string;
  @ApiProperty({ example: '2026-11-28T12:00:00.000Z' }) at: string;
  @ApiProperty({ example: 'alice' }) actor: string;
  @ApiProperty({ example: 'jwt', enum: ['jwt', 'api-key', 'none'] }) via: string;
  @ApiProperty({ example: 'task.cancelled' }) action: string;
  @ApiProperty({ example: 'task' }) target_type: string;
  @ApiPropertyOptional({ example: '42', nullable: true }) target_id: string | null;
  @ApiProperty({ example: { status_before: 'running' } }) details: Record<string, unknown>;
  @ApiPropertyOptional({ example: 'c0a8012e-5f1c-4e59-a1b8-1f2f4b1d7e0a', nullable: true }) correlation_id: string | null;
}

@ApiTags('audit')
@ApiBearerAuth()
@ApiSecurity('api-key')
@Roles('admin')
@Controller('audit')
export class AuditController {
  constructor(private readonly audit: AuditLog) {}

  @Get()
  @ApiOperation({ summary: 'The audit log, newest first (admin)' })
  @ApiOkResponse({ type: AuditEventDto, isArray: true })
  list(@Query() q: AuditQueryDto): Promise<AuditEvent[]> {
    return this.audit.list({ limit: q.limit ?? 100, before: q.before });
  }
}
