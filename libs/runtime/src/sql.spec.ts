import { QueryRunnerAlreadyReleasedError } from 'typeorm';
import { isDatabaseUnavailable, retryWhileDatabaseUnavailable } from './sql';

describe('database outages', () => {
  const pgError = (code: string, message = 'x') => Object.assign(new Error(message), { code });

  it('tells an unreachable or restarting server from a query it refused', () => {
    expect(isDatabaseUnavailable(pgError('57P01', 'terminating connection due to administrator command'))).toBe(true);
    expect(isDatabaseUnavailable(pgError('57P03', 'the database system is starting up'))).toBe(true);
    expect(isDatabaseUnavailable(pgError('08006'))).toBe(true);
    expect(isDatabaseUnavailable(pgError('ECONNREFUSED'))).toBe(true);
    expect(isDatabaseUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
    // TypeORM's QueryFailedError carries the driver's error.
    expect(isDatabaseUnavailable(Object.assign(new Error('wrapped'), { driverError: pgError('57P01') }))).toBe(true);
    // TypeORM's own error once a transaction lost its connection (the real one, not a look-alike).
    expect(isDatabaseUnavailable(new QueryRunnerAlreadyReleasedError())).toBe(true);
    expect(isDatabaseUnavailable(pgError('23505', 'duplicate key value violates unique constraint'))).toBe(false);
    expect(isDatabaseUnavailable(pgError('42P01', 'relation does not exist'))).toBe(false);
    expect(isDatabaseUnavailable(undefined)).toBe(false);
  });

  it('runs an operation again while the database is unavailable, and gives up on other errors at once', async () => {
    let calls = 0;
    const result = await retryWhileDatabaseUnavailable(async () => {
      if (++calls < 3) throw pgError('ECONNREFUSED');
      return 'stored';
    }, { maxWaitMs: 10_000 });
    expect([result, calls]).toEqual(['stored', 3]);

    calls = 0;
    await expect(retryWhileDatabaseUnavailable(async () => {
      calls++;
      throw pgError('23505');
    }, { maxWaitMs: 10_000 })).rejects.toThrow('x');
    expect(calls).toBe(1);
  });

  it('gives up when the outage outlasts the bound', async () => {
    let calls = 0;
    await expect(retryWhileDatabaseUnavailable(async () => {
      calls++;
      throw pgError('57P03');
    }, { maxWaitMs: 600 })).rejects.toMatchObject({ code: '57P03' });
    expect(calls).toBeGreaterThan(1);
  });
});
