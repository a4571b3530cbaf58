import { Body, Controller, Delete, Get, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiProperty, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { IsIn, IsString, Length, Matches } from 'class-validator';
import { AuditLog } from '../audit/audit.service';
import { positiveIntParam } from '../common/int-param.pipe';
import { ApiKeyInfo, ApiKeysService } from './api-keys.service';
import { Caller, Roles } from './decorators';
import { Principal, Role, ROLES } from './principal';

export class CreateApiKeyDto {
  @ApiProperty({ example: 'nightly-retraining', description: 'What the key is for.' })
  @IsString() @Length(1, 100)
  name: string;

  @ApiProperty({ example: 'svc-retraining', description: 'The subject the key acts as (becomes the user_id of its tasks).' })
  @IsString() @Length(1, 200) @Matches(/^[^\u0000-\u001f\u007f]+$/)
  subject: string;

  @ApiProperty({ enum: ROLES, example: 'scientist' })
  @IsIn(ROLES as unknown as string[])
  role: Role;
}

export class ApiKeyDto {
  @ApiProperty({ example: 3 }) id: number;
  @ApiProperty({ example: 'nightly-retraining' }) name: string;
  @ApiProperty({ example: 'svc-retraining' }) subject: string;
  @ApiProperty({ enum: ROLES, example: 'scientist' }) role: Role;
  @ApiProperty({ example: 'flk_x3Ab9q', description: 'The first characters of the key, to recognise it.' }) key_prefix: string;
  @ApiProperty({ example: 'alice' }) created_by: string;
  @ApiProperty({ example: '2026-11-28T12:00:00.000Z' }) created_at: string;
  @ApiProperty({ example: null, nullable: true }) revoked_at: string | null;
}

export class CreatedApiKeyDto extends ApiKeyDto {
  @ApiProperty({ example: 'flk_x3Ab9q…', description: 'The key. Shown this once: only its hash is stored.' }) key: string;
}

@ApiTags('api-keys')
@ApiBearerAuth()
@ApiSecurity('api-key')
@Roles('admin')
@Controller('api-keys')
export class ApiKeysController {
  constructor(
    private readonly keys: ApiKeysService,
    private readonly audit: AuditLog,
  ) {}

  @Post()
  @ApiOperation({ summary: 'Create an API key (admin)', description: 'The key is in the answer, once.' })
  @ApiOkResponse({ type: CreatedApiKeyDto })
  async create(@Body() body: CreateApiKeyDto, @Caller() caller: Principal): Promise<CreatedApiKeyDto> {
    const { key, info } = await this.keys.create(body.name, body.subject, body.role, caller.subject);
    await this.audit.record(caller, 'api-key.created', { type: 'api-key', id: info.id }, { name: info.name, subject: info.subject, role: info.role });
    return { ...info, key };
  }

  @Get()
  @ApiOperation({ summary: 'List API keys (admin)' })
  @ApiOkResponse({ type: ApiKeyDto, isArray: true })
  list(): Promise<ApiKeyInfo[]> {
    return this.keys.list();
  }

  @Delete(':id')
  @ApiOperation({ summary: 'Revoke an API key (admin)' })
  @ApiOkResponse({ type: ApiKeyDto })
  async revoke(@Param('id', positiveIntParam('id')) id: number, @Caller() caller: Principal): Promise<ApiKeyInfo> {
    const info = await this.keys.revoke(id);
    await this.audit.record(caller, 'api-key.revoked', { type: 'api-key', id }, { name: info.name, subject: info.subject });
    return info;
  }
}
