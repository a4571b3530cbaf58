import { allowedSources, canTransition, isFinal, TASK_STATUSES } from './task-status';

describe('task status transitions', () => {
  it('moves forward only', () => {
    expect(canTransition('pending', 'running')).toBe(true);
    expect(canTransition('running', 'success')).toBe(true);
    expect(canTransition('running', 'pending')).toBe(false);
    expect(canTransition('pending', 'success')).toBe(false);
  });

  it('never leaves a final state', () => {
    for (const final of ['success', 'failed', 'cancelled'] as const) {
      expect(isFinal(final)).toBe(true);
      for (const to of TASK_STATUSES) expect(canTransition(final, to)).toBe(false);
    }
    expect(isFinal('pending')).toBe(false);
    expect(isFinal('running')).toBe(false);
  });

  it('lists where each status may be reached from', () => {
    expect(allowedSources('running')).toEqual(['pending']);
    expect(allowedSources('cancelled')).toEqual(['pending', 'running']);
    expect(allowedSources('failed')).toEqual(['pending', 'running']);
    expect(allowedSources('success')).toEqual(['running']);
    expect(allowedSources('pending')).toEqual([]);
  });
});
