import { fit, flat, weights } from '../../test/support';
import { DEFAULT_SAMPLING } from '../base-strategy';
import { FedAdagrad } from './fedadagrad.strategy';
import { FedAdam } from './fedadam.strategy';
import { FedYogi } from './fedyogi.strategy';

/** One coordinate by hand; the numpy fixtures cover three rounds on a real layout. */
describe('FedOpt family', () => {
  const zeros = weights(new Array(9).fill(0));
  const twos = [fit('a', new Array(9).fill(2), 1)];

  it('FedAdagrad: w + eta * delta / (|delta| + tau) in the first round, and sends eta_l', () => {
    const s = new FedAdagrad({ ...DEFAULT_SAMPLING, eta: 0.1, eta_l: 0.05, tau: 1e-9 });
    expect(s.configureFit(1, ['a', 'b'])[0].config).toEqual({ eta_l: 0.05 });
    const w = flat(s.aggregateFit(1, zeros, twos).parameters)[0];
    expect(w).toBeCloseTo(0.1 * (2 / (2 + 1e-9)), 6);
  });

  it('FedAdam: m = 0.1 delta, v = 0.01 delta^2 after one round', () => {
    const s = new FedAdam({ ...DEFAULT_SAMPLING, eta: 0.1, eta_l: 0.1, beta_1: 0.9, beta_2: 0.99, tau: 1e-9 });
    const w = flat(s.aggregateFit(1, zeros, twos).parameters)[0];
    expect(w).toBeCloseTo((0.1 * 0.2) / (Math.sqrt(0.04) + 1e-9), 6);
  });

  it('FedYogi: v moves by (1 - beta_2) delta^2 towards delta^2', () => {
    const s = new FedYogi({ ...DEFAULT_SAMPLING, eta: 0.01, eta_l: 0.0316, beta_1: 0.9, beta_2: 0.99, tau: 1e-3 });
    // v_0 = 0 < 4, so v_1 = 0 + 0.01 * 4 = 0.04; m_1 = 0.2.
    const w = flat(s.aggregateFit(1, zeros, twos).parameters)[0];
    expect(w).toBeCloseTo((0.01 * 0.2) / (0.2 + 1e-3), 6);
  });
});
