import { Controller, Get, Inject, NotFoundException, Param } from '@nestjs/common';
import { ApiBearerAuth, ApiNotFoundResponse, ApiSecurity, ApiOkResponse, ApiOperation, ApiProperty, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { ModelRegistry, ModelVersionInfo } from '@fl/registry';
import { MODEL_REGISTRY } from '@fl/runtime';
import { positiveIntParam } from '../common/int-param.pipe';
import { ErrorBodyDto } from '../tasks/dto/task.dto';

export class ModelVersionDto {
  @ApiProperty({ example: 'iris' }) name: string;
  @ApiProperty({ example: 1 }) version: number;
  @ApiProperty({ example: 'mlflow-artifacts:/1/0f3c…/artifacts/model', description: 'Where the artifacts live in the registry.' }) source: string;
  @ApiPropertyOptional({ example: '0f3c2a…', description: 'The run the artifacts were logged under.' }) run_id?: string;
  @ApiProperty({ example: { use_case: 'iris', package_sha256: '9f2c…' } }) tags: Record<string, string>;
  @ApiProperty({ example: '2026-11-28T12:00:00.000Z' }) created_at: string;
}

export class ModelDto {
  @ApiProperty({ example: 'iris' }) name: string;
  @ApiPropertyOptional({ example: "default model of use case 'iris'" }) description?: string;
  @ApiPropertyOptional({ example: 2, nullable: true }) latest_version: number | null;
  @ApiProperty({ example: { use_case: 'iris' } }) tags: Record<string, string>;
  @ApiProperty({ type: ModelVersionDto, isArray: true }) versions: ModelVersionDto[];
}

function versionDto(v: ModelVersionInfo): ModelVersionDto {
  return { name: v.name, version: v.version, source: v.source, run_id: v.runId, tags: v.tags, created_at: v.createdAt.toISOString() };
}

/** Registered models, from the configured registry backend (built-in or MLflow). */
@ApiTags('models')
@ApiBearerAuth()
@ApiSecurity('api-key')
@Controller('models')
export class ModelsController {
  constructor(@Inject(MODEL_REGISTRY) private readonly registry: ModelRegistry) {}

  @Get()
  @ApiOperation({ summary: 'List registered models with their versions and tags' })
  @ApiOkResponse({ type: ModelDto, isArray: true })
  async list(): Promise<ModelDto[]> {
    const [models, versions] = await Promise.all([this.registry.listModels(), this.registry.searchVersions({})]);
    return models.map((m) => ({
      name: m.name,
      description: m.description,
      latest_version: m.latestVersion,
      tags: m.tags,
      versions: versions.filter((v) => v.name === m.name).map(versionDto),
    }));
  }

  @Get(':name/versions')
  @ApiOperation({ summary: "List a model's versions" })
  @ApiOkResponse({ type: ModelVersionDto, isArray: true })
  @ApiNotFoundResponse({ type: ErrorBodyDto })
  async versions(@Param('name') name: string): Promise<ModelVersionDto[]> {
    const versions = await this.registry.searchVersions({ name });
    if (versions.length === 0) throw new NotFoundException(`model '${name}' not found`);
    return versions.map(versionDto);
  }

  @Get(':name/versions/:version')
  @ApiOperation({ summary: 'Get one model version' })
  @ApiOkResponse({ type: ModelVersionDto })
  @ApiNotFoundResponse({ type: ErrorBodyDto })
  async version(@Param('name') name: string, @Param('version', positiveIntParam('version')) version: number): Promise<ModelVersionDto> {
    const v = await this.registry.getVersion(name, version);
    if (!v) throw new NotFoundException(`model '${name}' version ${version} not found`);
    return versionDto(v);
  }
}
