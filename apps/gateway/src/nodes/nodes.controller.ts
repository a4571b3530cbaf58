import { Controller, Get, Inject } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiSecurity, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import { DataSource } from 'typeorm';
import { DATA_SOURCE } from '@fl/runtime';
import { GATEWAY_CONFIG, GatewayConfig } from '../config';

export class NodeDto {
  @ApiProperty({ example: 'site-1' }) name: string;
  @ApiProperty({ example: ['iris'] }) use_cases: string[];
  @ApiProperty({ example: { iris: { train: 40, test: 10 } } }) examples: Record<string, { train: number; test: number }>;
  @ApiProperty({
    example: { digits: "/data/site-1/digits.csv:12: column 'px3' is not a number: 'dark'" },
    description: 'Use cases the site was told to serve but refuses, with the reason (its data does not fit the use case); it never trains on them.',
  })
  rejected_use_cases: Record<string, string>;
  @ApiProperty({
    example: 'online',
    enum: ['online', 'offline', 'enrolled', 'revoked'],
    description: 'enrolled: has a broker user but has not registered yet; revoked: its broker user was removed, coordinators no longer use it',
  })
  status: 'online' | 'offline' | 'enrolled' | 'revoked';
  @ApiProperty({ example: '2026-11-28T12:00:00.000Z' }) last_seen_at: string;
  @ApiProperty({ example: '2026-11-28T11:00:00.000Z' }) registered_at: string;
  @ApiProperty({ example: null, nullable: true, type: String }) enrolled_at: string | null;
  @ApiProperty({ example: null, nullable: true, type: String }) revoked_at: string | null;
}

@ApiTags('nodes')
@ApiBearerAuth()
@ApiSecurity('api-key')
@Controller()
export class NodesController {
  constructor(
    @Inject(DATA_SOURCE) private readonly db: DataSource,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
  ) {}

  @Get('nodes')
  @ApiOperation({ summary: 'List edge workers', description: 'As the coordinators know them from registrations and heartbeats.' })
  @ApiOkResponse({ type: NodeDto, isArray: true })
  async nodes(): Promise<NodeDto[]> {
    const rows: {
      name: string; use_cases: string[]; examples: NodeDto['examples']; info: { rejected_use_cases?: Record<string, string> } | null;
      status: string; last_seen_at: Date; registered_at: Date;
      enrolled_at: Date | null; revoked_at: Date | null; online: boolean;
    }[] = await this.db.query(
      `SELECT name, use_cases, examples, info, status, last_seen_at, registered_at, enrolled_at, revoked_at,
         status = 'online' AND last_seen_at > now() - make_interval(secs => $1) AS online
       FROM coordinator.nodes ORDER BY name`,
      [this.config.NODE_ONLINE_WINDOW_S],
    );
    return rows.map((r) => ({
      name: r.name,
      use_cases: r.use_cases,
      examples: r.examples,
      rejected_use_cases: r.info?.rejected_use_cases ?? {},
      status: r.status === 'revoked' || r.status === 'enrolled' ? r.status : r.online ? 'online' : 'offline',
      last_seen_at: r.last_seen_at.toISOString(),
      registered_at: r.registered_at.toISOString(),
      enrolled_at: r.enrolled_at?.toISOString() ?? null,
      revoked_at: r.revoked_at?.toISOString() ?? null,
    }));
  }
}
