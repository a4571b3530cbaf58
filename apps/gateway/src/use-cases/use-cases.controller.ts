import { BadRequestException, Body, Controller, Get, HttpCode, NotFoundException, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiConflictResponse, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { parseUseCase, UseCaseDefinition, UseCaseValidationError } from '@fl/datasets';
import { Caller, Roles } from '../auth/decorators';
import { Principal } from '../auth/principal';
import { UseCaseStore } from './use-case-store';
import { UseCaseDefinitionDto, UseCaseSummaryDto } from './use-case.dto';

@ApiTags('use-cases')
@ApiBearerAuth()
@ApiSecurity('api-key')
@Controller('use-cases')
export class UseCasesController {
  constructor(private readonly store: UseCaseStore) {}

  @Get()
  @ApiOperation({ summary: 'List use cases', description: 'The shipped ones, those of USE_CASES_DIR and those added with POST /use-cases.' })
  @ApiOkResponse({ type: UseCaseSummaryDto, isArray: true })
  async list(): Promise<UseCaseSummaryDto[]> {
    await this.store.refresh();
    const catalog = this.store.catalog;
    return catalog.list().map((u) => ({
      name: u.name,
      description: u.description,
      features: u.features.map((f) => f.name),
      label: u.label.column,
      classes: u.label.classes,
      origin: catalog.origin(u.name)?.kind ?? 'file',
    }));
  }

  @Get(':name')
  @ApiOperation({ summary: 'A use case definition', description: 'In the file format of libs/datasets/use-cases/*.json (a file in USE_CASES_DIR works as well as a stored one).' })
  @ApiOkResponse({ type: UseCaseDefinitionDto })
  async get(@Param('name') name: string): Promise<UseCaseDefinition> {
    let uc = this.store.catalog.find(name);
    if (!uc) {
      await this.store.refresh();
      uc = this.store.catalog.find(name);
    }
    if (!uc) throw new NotFoundException({ message: `unknown use case '${name}'`, details: [{ field: 'name', reason: 'no such use case' }] });
    return uc;
  }

  @Post()
  @Roles('admin')
  @HttpCode(201)
  @ApiOperation({
    summary: 'Add a use case (admin)',
    description:
      'Stores a validated definition and sends it to the edge workers over the bus (a site that starts later gets it from a coordinator ' +
      'when it registers); each site whose CSV files fit it serves it, one whose files have its columns but not its values refuses it ' +
      '(GET /nodes shows why). Then publish its default model (`npm run cli -- models publish <name>`) or import one (`models import`).',
  })
  @ApiBody({ type: UseCaseDefinitionDto })
  @ApiCreatedResponse({ type: UseCaseDefinitionDto })
  @ApiConflictResponse({ description: 'a use case of that name exists' })
  async create(@Body() body: unknown, @Caller() caller: Principal): Promise<UseCaseDefinition> {
    let uc: UseCaseDefinition;
    try {
      uc = parseUseCase(body, 'body');
    } catch (err) {
      if (!(err instanceof UseCaseValidationError)) throw err;
      throw new BadRequestException({ message: `invalid use case: ${err.problems.map((p) => `${p.field}: ${p.reason}`).join('; ')}`, details: err.problems });
    }
    await this.store.add(uc, caller.subject);
    return uc;
  }
}
