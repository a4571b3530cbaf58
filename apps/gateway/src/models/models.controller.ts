import { Controller, Get, Inject, NotFoundException, Param } from '@nestjs/common';
import { ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiProperty, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { ModelRegistry } from '@fl/registry';
import { MODEL_REGISTRY } from '@fl/runtime';
import { ErrorBodyDto } from '../tasks/dto/task.dto';

export class ModelDto {
  @ApiProperty({ example: 'iris' }) name: string;
  @ApiPropertyOptional({ example: 'Softmax regression for iris' }) description?: string;
  @ApiPropertyOptional({ example: 2, nullable: true }) latest_version: number | null;
  @ApiProperty({ example: { use_case: 'iris' } }) tags: Record<string, string>;
}

export class ModelVersionDto {
  @ApiProperty({ example: 'iris' }) name: string;
  @ApiProperty({ example: 1 }) version: number;
  @ApiProperty({ example: 'local-artifacts:/iris/1' }) source: string;
  @ApiProperty({ example: { use_case: 'iris', package_sha256: '9f2c…' } }) tags: Record<string, string>;
  @ApiProperty({ example: '2026-11-28T12:00:00.000Z' }) created_at: string;
}

@ApiTags('models')
@Controller('models')
export class ModelsController {
  constructor(@Inject(MODEL_REGISTRY) private readonly registry: ModelRegistry) {}

  @Get()
  @ApiOperation({ summary: 'List registered models' })
  @ApiOkResponse({ type: ModelDto, isArray: true })
  async list(): Promise<ModelDto[]> {
    const models = await this.registry.listModels();
    return models.map((m) => ({ name: m.name, description: m.description, latest_version: m.latestVersion, tags: m.tags }));
  }

  @Get(':name/versions')
  @ApiOperation({ summary: "List a model's versions" })
  @ApiOkResponse({ type: ModelVersionDto, isArray: true })
  @ApiNotFoundResponse({ type: ErrorBodyDto })
  async versions(@Param('name') name: string): Promise<ModelVersionDto[]> {
    const versions = await this.registry.searchVersions({ name });
    if (versions.length === 0) throw new NotFoundException(`model '${name}' not found`);
    return versions.map((v) => ({ name: v.name, version: v.version, source: v.source, tags: v.tags, created_at: v.createdAt.toISOString() }));
  }
}
