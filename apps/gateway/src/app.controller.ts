import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Public } from './auth/decorators';
import { PongDto } from './tasks/dto/task.dto';

@ApiTags('health')
@Public()
@Controller()
export class AppController {
  @Get()
  @ApiOperation({ summary: 'Ping', description: 'Answers as the predecessor did.' })
  @ApiOkResponse({ type: PongDto })
  ping(): PongDto {
    return { message: 'Pong' };
  }
}
