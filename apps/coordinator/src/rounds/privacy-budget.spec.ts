import { PrivacyAccountant } from '@fl/aggregation';
import { PrivacySettings } from '@fl/contracts';
import { PrivacyBudget, PrivacyBudgetReached } from './privacy-budget';

const settings = (over: Partial<PrivacySettings> = {}): PrivacySettings => ({
  mode: 'central',
  noise_multiplier: 1.1,
  clipping_norm: 1,
  adaptive_clipping: false,
  target_clipped_quantile: 0.5,
  clip_norm_lr: 0.2,
  delta: 1e-5,
  ...over,
});

describe('a task\'s privacy budget', () => {
  it('counts each round as a sampled Gaussian mechanism at q = asked / available (central noise)', () => {
    const b = new PrivacyBudget(settings());
    b.spend(3, 10);
    b.spend(5, 10);
    const want = new PrivacyAccountant(1e-5);
    want.addRounds(0.3, 1.1);
    want.addRounds(0.5, 1.1);
    expect(b.spent()).toEqual(want.spent());
    expect(b.totals()).toEqual({ epsilon: want.spent().epsilon, delta: 1e-5 });
  });

  it('counts q = 1 with local noise: the coordinator knows who took part', () => {
    const b = new PrivacyBudget(settings({ mode: 'local' }));
    b.spend(3, 10);
    const want = new PrivacyAccountant(1e-5);
    want.addRounds(1, 1.1);
    expect(b.spent().epsilon).toBe(want.spent().epsilon);
    expect(b.workerConfig()).toEqual({ dp_clipping_norm: 1, dp_noise_multiplier: 1.1 });
    expect(new PrivacyBudget(settings()).workerConfig()).toBeUndefined();
  });

  it('refuses the round that would exceed the budget, saying from what to what', () => {
    const one = new PrivacyAccountant(1e-5);
    one.addRounds(1, 1.1, 2);
    const afterTwo = one.spent().epsilon;
    const b = new PrivacyBudget(settings({ epsilon_budget: afterTwo + 1e-9 }));
    b.checkNextRound(1, 4, 4);
    b.spend(4, 4);
    b.checkNextRound(2, 4, 4);
    b.spend(4, 4);
    expect(() => b.checkNextRound(3, 4, 4)).toThrow(PrivacyBudgetReached);
    expect(() => b.checkNextRound(3, 4, 4)).toThrow(new RegExp(`^privacy budget reached: round 3 would take epsilon from ${afterTwo.toFixed(3)} to \\d+\\.\\d{3}, beyond epsilon_budget`));
    // Without a budget nothing is refused.
    expect(() => new PrivacyBudget(settings()).checkNextRound(99, 4, 4)).not.toThrow();
  });

  it('goes on counting from a checkpoint, and refuses one without its accounting', () => {
    const straight = new PrivacyBudget(settings());
    straight.spend(2, 5);
    const state = new Map<string, Float64Array>([['m/w', new Float64Array(2)]]);
    straight.save(state);
    expect([...PrivacyBudget.without(state).keys()]).toEqual(['m/w']);
    straight.spend(2, 5);
    const resumed = new PrivacyBudget(settings());
    resumed.restore(state, 1);
    resumed.spend(2, 5);
    expect(resumed.spent()).toEqual(straight.spent());
    expect(() => new PrivacyBudget(settings()).restore(new Map(), 3)).toThrow('it holds no privacy accounting for the 3 round(s) it completed');
  });

  it('reports no epsilon without noise, and says so in the tags', () => {
    const b = new PrivacyBudget(settings({ noise_multiplier: 0 }));
    b.spend(1, 1);
    expect(b.totals()).toEqual({});
    expect(b.tags()).toMatchObject({ dp_mode: 'central', dp_epsilon: 'unbounded (no noise)', dp_rounds: '1' });
  });
});
