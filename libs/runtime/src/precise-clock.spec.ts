import { PreciseClock, preciseNow } from './precise-clock';

describe('PreciseClock', () => {
  it('gives the wall clock with the monotonic clock\'s fraction, as a Date and as ISO 8601 with microseconds', () => {
    let wall = Date.parse('2026-12-07T10:00:00.000Z');
    let mono = 5000.25;
    const clock = new PreciseClock(() => wall, () => mono);
    expect(clock.now().iso).toBe('2026-12-07T10:00:00.000000Z');
    mono += 0.1234;
    expect(clock.now()).toEqual({ date: new Date('2026-12-07T10:00:00.000Z'), iso: '2026-12-07T10:00:00.000123Z' });
    mono += 1.5;
    wall += 1;
    expect(clock.now().iso).toBe('2026-12-07T10:00:00.001623Z');
  });

  it('never goes backwards while the wall clock only truncates, and follows the wall clock when it is stepped', () => {
    let wall = 1_000_000;
    let mono = 0;
    const clock = new PreciseClock(() => wall, () => mono);
    let last = clock.nowMs();
    for (let i = 0; i < 5000; i++) {
      mono += 0.137;
      wall = 1_000_000 + Math.floor(mono);
      const t = clock.nowMs();
      expect(t).toBeGreaterThan(last);
      expect(t - wall).toBeGreaterThanOrEqual(0);
      expect(t - wall).toBeLessThanOrEqual(1); // 1 only by rounding at this magnitude
      last = t;
    }
    // The system clock set back a minute: the times follow it.
    wall -= 60_000;
    mono += 0.5;
    expect(Math.abs(clock.nowMs() - wall)).toBeLessThan(1);
  });

  it("reads this process's clocks", () => {
    const before = Date.now();
    const { date, iso } = preciseNow();
    expect(date.getTime()).toBeGreaterThanOrEqual(before - PreciseClock.STEP_MS);
    expect(date.getTime()).toBeLessThanOrEqual(Date.now() + PreciseClock.STEP_MS);
    expect(iso).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(iso.slice(0, 23)).toBe(date.toISOString().slice(0, 23));
  });
});
