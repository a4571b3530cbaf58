import { resolveTaskPrivacy } from './task-privacy';
import { resolveTaskStrategy } from './task-strategy';

describe('a task\'s differential privacy settings', () => {
  const fedavg = resolveTaskStrategy({ strategy: 'FedAvg', min_fit_clients: 2 });

  it('are optional, and completed with defaults when given', () => {
    expect(resolveTaskPrivacy(undefined, fedavg)).toBeUndefined();
    expect(resolveTaskPrivacy({ noise_multiplier: 1, clipping_norm: 2, epsilon_budget: 5 }, fedavg)).toEqual({
      mode: 'central',
      noise_multiplier: 1,
      clipping_norm: 2,
      adaptive_clipping: false,
      target_clipped_quantile: 0.5,
      clip_norm_lr: 0.2,
      delta: 1e-5,
      epsilon_budget: 5,
    });
  });

  it.each([
    [[1, 2], null, 'privacy must be an object'],
    [{ clipping_norm: 1 }, 'noise_multiplier', "parameter 'noise_multiplier' is required"],
    [{ noise_multiplier: 1, clipping_norm: 0 }, 'clipping_norm', "parameter 'clipping_norm' must be > 0, got 0"],
    [{ noise_multiplier: 1, clipping_norm: 1, delta: 1 }, 'delta', "parameter 'delta' must be a number in (0, 1)"],
    [{ noise_multiplier: 1, clipping_norm: 1, epsilon_budget: -2 }, 'epsilon_budget', "parameter 'epsilon_budget' must be a number > 0"],
    [{ noise_multiplier: 0, clipping_norm: 1, epsilon_budget: 2 }, 'epsilon_budget', 'without noise epsilon is unbounded'],
    [{ noise_multiplier: 1, clipping_norm: 1, sigma: 3 }, 'sigma', "parameter 'sigma' is not a privacy parameter"],
    [{ mode: 'local', noise_multiplier: 1, clipping_norm: 1, adaptive_clipping: true }, 'adaptive_clipping', 'needs mode central'],
  ])('refuse %j naming %s', (privacy, parameter, message) => {
    let thrown: { parameter: string | null; message: string } | undefined;
    try {
      resolveTaskPrivacy(privacy, fedavg);
    } catch (err) {
      thrown = err as { parameter: string | null; message: string };
    }
    expect(thrown?.parameter).toBe(parameter);
    expect(thrown?.message).toContain(message);
  });

  it('need a strategy that averages for central noise', () => {
    const median = resolveTaskStrategy({ strategy: 'FedMedian', min_fit_clients: 2 });
    expect(() => resolveTaskPrivacy({ noise_multiplier: 1, clipping_norm: 1 }, median)).toThrow("central differential privacy needs a strategy that averages");
    expect(resolveTaskPrivacy({ mode: 'local', noise_multiplier: 1, clipping_norm: 1 }, median)?.mode).toBe('local');
  });
});
