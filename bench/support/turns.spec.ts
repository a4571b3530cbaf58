import { summarizeTurns, TurnsRun } from './turns';

const run = (label: string, build: string, wall: number, cpu: number, database: number | null = 1, floor?: number): TurnsRun => ({
  label,
  build,
  cycleMs: { median: wall },
  coordinatorCpuMsPerRound: cpu,
  workersCpuMsPerRound: 1,
  gatewayCpuMsPerRound: 0,
  brokerCpuMsPerRound: 1,
  databaseCpuMsPerRound: database,
  ...(floor === undefined ? {} : { brokerFloor: { wallMs: { median: floor } } }),
});

describe('summarizeTurns', () => {
  it('takes per case and build the median over the turns, and the change against the other build', () => {
    const rows = summarizeTurns(
      [
        run('N=2, this build, turn 1', 'this', 6, 3, 1, 3),
        run('N=2, against, turn 1', '/base', 8, 5, 1, 2.5),
        run('N=2, against, turn 2', '/base', 12, 7, 1, 3.5),
        run('N=2, this build, turn 2', 'this', 4, 1, 1, 2),
        run('N=2, this build, turn 3', 'this', 5, 2, 1, 4),
        run('N=2, against, turn 3', '/base', 10, 6, 1, 3),
        run('N=10, this build, turn 1', 'this', 20, 10, null),
      ],
      '/base',
      () => undefined,
    );
    expect(rows).toEqual([
      { case: 'N=2', build: 'this', turns: 3, wallMedianMs: 5, cpuMsPerRound: 5, coordinatorCpuMsPerRound: 2, workersCpuMsPerRound: 1, brokerCpuMsPerRound: 1, databaseCpuMsPerRound: 1, floorWallMs: 3, wallChangePct: -50, cpuChangePct: -44.44 },
      { case: 'N=2', build: '/base', turns: 3, wallMedianMs: 10, cpuMsPerRound: 9, coordinatorCpuMsPerRound: 6, workersCpuMsPerRound: 1, brokerCpuMsPerRound: 1, databaseCpuMsPerRound: 1, floorWallMs: 3 },
      // Without the other build's runs, no change; a server or floor not measured stays unknown.
      { case: 'N=10', build: 'this', turns: 1, wallMedianMs: 20, cpuMsPerRound: 12, coordinatorCpuMsPerRound: 10, workersCpuMsPerRound: 1, brokerCpuMsPerRound: 1, databaseCpuMsPerRound: null, floorWallMs: null },
    ]);
  });

  it('takes the mean of the middle two of an even number of turns', () => {
    const [row] = summarizeTurns([run('p2, turn 1', 'this', 4, 1), run('p2, turn 2', 'this', 7, 2)], undefined, () => undefined);
    expect(row.wallMedianMs).toBe(5.5);
    expect(row.wallChangePct).toBeUndefined();
  });
});
