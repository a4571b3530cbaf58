import { Controller, Get } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiSecurity, ApiTags, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { ErrorBodyDto } from '../tasks/dto/task.dto';
import { platformStrategies } from '../tasks/task-strategy';
import { StrategyDto } from './dto/strategy.dto';

@ApiTags('strategies')
@ApiBearerAuth()
@ApiSecurity('api-key')
@ApiUnauthorizedResponse({ type: ErrorBodyDto, description: 'No valid bearer token or API key.' })
@Controller('strategies')
export class StrategiesController {
  @Get()
  @ApiOperation({
    summary: 'List aggregation strategies',
    description: 'Every strategy a task may name in `strategy`, with the parameters it takes in `strategy_params`, their defaults and bounds.',
  })
  @ApiOkResponse({ type: StrategyDto, isArray: true })
  list(): StrategyDto[] {
    return platformStrategies();
  }
}
