import { r2 } from './stats';

/** What summarizeTurns reads of one run of a rounds case (the rounds bench's result). */
export interface TurnsRun {
  /** The case's label; ", this build", ", against" and ", turn N" are left out when grouping. */
  label: string;
  /** 'this', or the other build's folder. */
  build: string;
  cycleMs: { median: number };
  coordinatorCpuMsPerRound: number;
  workersCpuMsPerRound: number;
  gatewayCpuMsPerRound: number;
  brokerCpuMsPerRound: number | null;
  databaseCpuMsPerRound: number | null;
  /** The case's broker floor, where it was measured (cases of separate processes). */
  brokerFloor?: { wallMs: { median: number } };
}

export interface TurnsSummary {
  case: string;
  build: string;
  turns: number;
  /** Medians over the turns of each run's figure. */
  wallMedianMs: number;
  /** CPU per round over all processes measured: coordinator, workers, gateway, RabbitMQ, PostgreSQL. */
  cpuMsPerRound: number;
  coordinatorCpuMsPerRound: number;
  workersCpuMsPerRound: number;
  brokerCpuMsPerRound: number | null;
  databaseCpuMsPerRound: number | null;
  /** Median over the turns of the broker floor's wall median; null where a run had none. */
  floorWallMs: number | null;
  /** Against the other build's, where there is one: (this - other) / other, in %. */
  wallChangePct?: number;
  cpuChangePct?: number;
}

/** Per case and build, the median over the turns of each run's wall median and CPU per round; printed, and returned for the JSON. */
export function summarizeTurns(results: TurnsRun[], against: string | undefined, log: (...args: unknown[]) => void = console.log): TurnsSummary[] {
  // Of an even number of turns, the mean of the middle two.
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const groups = new Map<string, TurnsRun[]>();
  for (const r of results) {
    const label = r.label.replace(/, (this build|against|turn \d+)/g, '');
    const key = `${label}\u0000${r.build}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const cpu = (r: TurnsRun) => r.coordinatorCpuMsPerRound + r.workersCpuMsPerRound + r.gatewayCpuMsPerRound + (r.brokerCpuMsPerRound ?? 0) + (r.databaseCpuMsPerRound ?? 0);
  const orNull = (xs: (number | null)[]) => (xs.some((x) => x === null) ? null : r2(median(xs as number[])));
  const rows: TurnsSummary[] = [...groups].map(([key, rs]) => ({
    case: key.split('\u0000')[0],
    build: rs[0].build,
    turns: rs.length,
    wallMedianMs: r2(median(rs.map((r) => r.cycleMs.median))),
    cpuMsPerRound: r2(median(rs.map(cpu))),
    coordinatorCpuMsPerRound: r2(median(rs.map((r) => r.coordinatorCpuMsPerRound))),
    workersCpuMsPerRound: r2(median(rs.map((r) => r.workersCpuMsPerRound))),
    brokerCpuMsPerRound: orNull(rs.map((r) => r.brokerCpuMsPerRound)),
    databaseCpuMsPerRound: orNull(rs.map((r) => r.databaseCpuMsPerRound)),
    floorWallMs: orNull(rs.map((r) => r.brokerFloor?.wallMs.median ?? null)),
  }));
  if (against) {
    for (const row of rows.filter((r) => r.build === 'this')) {
      const other = rows.find((r) => r.case === row.case && r.build === against);
      if (!other) continue;
      row.wallChangePct = r2(((row.wallMedianMs - other.wallMedianMs) / other.wallMedianMs) * 100);
      row.cpuChangePct = r2(((row.cpuMsPerRound - other.cpuMsPerRound) / other.cpuMsPerRound) * 100);
    }
  }
  log(`\nover the turns (medians of each run's figures)${against ? `; against: ${against}` : ''}`);
  (log === console.log ? console.table : log)(
    rows.map((r) => ({
      case: r.case,
      build: r.build === 'this' ? 'this' : 'against',
      turns: r.turns,
      'wall median': r.wallMedianMs,
      'broker floor': r.floorWallMs ?? '-',
      'CPU, all': r.cpuMsPerRound,
      coordinator: r.coordinatorCpuMsPerRound,
      workers: r.workersCpuMsPerRound,
      RabbitMQ: r.brokerCpuMsPerRound ?? '-',
      PostgreSQL: r.databaseCpuMsPerRound ?? '-',
      'wall change': r.wallChangePct === undefined ? '-' : `${r.wallChangePct}%`,
      'CPU change': r.cpuChangePct === undefined ? '-' : `${r.cpuChangePct}%`,
    })),
  );
  return rows;
}
