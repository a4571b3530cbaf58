import { DatabaseOutages } from './database-outages';

describe('DatabaseOutages (DATABASE_OUTAGE_MAX_S)', () => {
  let now: number;
  const clock = () => now;
  const at = (s: number) => (now = 1_000_000 + s * 1000);

  it('measures an outage from the first failed call to the first that succeeds again, and ends it once', () => {
    const outages = new DatabaseOutages(300, clock);
    at(0);
    expect(outages.succeeded()).toBeUndefined();
    at(10);
    outages.failed();
    at(70);
    outages.failed();
    at(130.4);
    expect(outages.succeeded()).toEqual({
      from: at(10),
      lastFailure: at(70),
      to: at(130.4),
      seconds: 120.4,
      tooLong: false,
      reason: 'database unavailable for 120 s (DATABASE_OUTAGE_MAX_S=300)',
    });
    at(131);
    expect(outages.succeeded()).toBeUndefined();
  });

  it('fails the tasks taken on before an outage longer than the bound, and only those', () => {
    const outages = new DatabaseOutages(3, clock);
    const before = at(0);
    at(5);
    outages.failed();
    at(8);
    outages.failed();
    at(11);
    const outage = outages.succeeded()!;
    expect(outage).toMatchObject({ seconds: 6, tooLong: true, reason: 'database unavailable for 6 s (DATABASE_OUTAGE_MAX_S=3)' });
    expect(outages.verdictFor(before, outage)).toBe('database unavailable for 6 s (DATABASE_OUTAGE_MAX_S=3)');
    expect(outages.verdictFor(at(5), outage)).toBe(outage.reason);
    // Claimed once the database answered again (after the last failed call): the outage did not touch it.
    expect(outages.verdictFor(at(10), outage)).toBeUndefined();
    expect(outages.verdictFor(before)).toBe(outage.reason);
  });

  it('lets a task resume after an outage within the bound, however long the task has run', () => {
    const outages = new DatabaseOutages(3, clock);
    at(100);
    outages.failed();
    at(103);
    const outage = outages.succeeded()!;
    expect(outage).toMatchObject({ seconds: 3, tooLong: false });
    expect(outages.verdictFor(at(0), outage)).toBeUndefined();
  });

  it("fails another coordinator's task only if its lease lapsed during the long outage", () => {
    const outages = new DatabaseOutages(10, clock);
    at(100);
    outages.failed();
    at(160);
    outages.succeeded();
    at(161);
    // Lapsed at 130 (its coordinator could not renew it): it ran through the outage.
    expect(outages.verdictForLapsedLease(31, 5)).toBe('database unavailable for 60 s (DATABASE_OUTAGE_MAX_S=10)');
    // Lapsed at 97, just before this coordinator noticed: within the slack of its sweep interval.
    expect(outages.verdictForLapsedLease(64, 5)).toBeDefined();
    // Lapsed at 50, long before: its coordinator died then; the task resumes.
    expect(outages.verdictForLapsedLease(111, 5)).toBeUndefined();
    // Lapsed after the database was back: not for want of it.
    expect(outages.verdictForLapsedLease(0.5, 5)).toBeUndefined();
  });

  it('has no verdict without an outage, or after a short one', () => {
    const outages = new DatabaseOutages(10, clock);
    at(0);
    expect(outages.verdictFor(0)).toBeUndefined();
    expect(outages.verdictForLapsedLease(1, 5)).toBeUndefined();
    outages.failed();
    at(2);
    outages.succeeded();
    expect(outages.verdictForLapsedLease(1, 5)).toBeUndefined();
  });
});
