import { epsilonFromRdp, PrivacyAccountant, sampledGaussianRdp } from './rdp-accountant';

describe('RDP accountant of the sampled Gaussian mechanism', () => {
  it('reduces to the Gaussian mechanism, alpha / (2 sigma^2), without sampling (Mironov 2017, Table II)', () => {
    expect(sampledGaussianRdp(1, 2, 8)).toBeCloseTo(8 / 8, 12);
    expect(sampledGaussianRdp(0, 2, 8)).toBe(0);
  });

  it('is tighter with sampling and grows with the order', () => {
    expect(sampledGaussianRdp(0.01, 1, 4)).toBeLessThan(sampledGaussianRdp(1, 1, 4));
    expect(sampledGaussianRdp(0.01, 1, 8)).toBeGreaterThan(sampledGaussianRdp(0.01, 1, 4));
  });

  /**
   * Published: Opacus documentation, "Compute DP-SGD Privacy"
   * (https://opacus.ai/api/compute_dp_sgd_privacy.html): sampling rate 1 %,
   * noise multiplier 1.0, 300 steps, orders 2 5 10 20 100, delta 1e-5
   * "satisfies differential privacy with epsilon = 2.39 ... The optimal alpha is 5.0".
   * That figure is the Balle et al. 2020 conversion (our default): the classic
   * conversion gives 3.02 for the same RDP values, as the second check shows.
   */
  it('matches the epsilon Opacus publishes for q = 0.01, sigma = 1.0, 300 steps, delta = 1e-5', () => {
    const orders = [2, 5, 10, 20, 100];
    const acc = new PrivacyAccountant(1e-5, orders, 'balle2020');
    acc.addRounds(0.01, 1.0, 300);
    const spent = acc.spent();
    expect(spent.epsilon.toFixed(2)).toBe('2.39');
    expect(spent.order).toBe(5);
    const classic = epsilonFromRdp(orders, Array.from(PrivacyAccountant.roundRdp(0.01, 1.0, orders, 300)), 1e-5, 'classic');
    expect(classic.epsilon.toFixed(2)).toBe('3.02');
  });

  /**
   * Published: the same Opacus page (an earlier revision, classic conversion)
   * gives (2.95, 1e-5) for 60000 examples, batch 256, noise 1.12, 60 epochs,
   * orders 10 20 100. The page does not state the step count; 2.95 is what
   * 60 * ceil(60000 / 256) = 14100 steps give with the classic conversion
   * (14062 steps would give 2.94), so this check rests on that reading.
   */
  it('matches the epsilon published with the classic conversion for the MNIST setting (batch 256, sigma 1.12, 60 epochs)', () => {
    const acc = new PrivacyAccountant(1e-5, [10, 20, 100], 'classic');
    acc.addRounds(256 / 60000, 1.12, 60 * Math.ceil(60000 / 256));
    expect(acc.spent().epsilon.toFixed(2)).toBe('2.95');
  });

  it('composes round by round and tells when the next round would exceed the budget', () => {
    const a = new PrivacyAccountant(1e-5);
    const b = new PrivacyAccountant(1e-5);
    for (let i = 0; i < 10; i++) a.addRounds(0.1, 1.5);
    b.addRounds(0.1, 1.5, 10);
    expect(a.spent().epsilon).toBeCloseTo(b.spent().epsilon, 10);
    expect(a.rounds).toBe(10);
    const next = a.epsilonAfterNextRound(0.1, 1.5);
    expect(next).toBeGreaterThan(a.spent().epsilon);
    expect(a.wouldExceed(next + 1e-9, 0.1, 1.5)).toBe(false);
    expect(a.wouldExceed(next - 1e-9, 0.1, 1.5)).toBe(true);
    expect(a.spent().rounds).toBe(10);
  });

  it('refuses bad inputs by name', () => {
    expect(() => sampledGaussianRdp(1.5, 1, 2)).toThrow('sampling rate q must be in [0, 1], got 1.5');
    expect(() => sampledGaussianRdp(0.1, 1, 2.5)).toThrow('RDP order must be an integer >= 2, got 2.5');
    expect(() => new PrivacyAccountant(0)).toThrow('delta must be in (0, 1), got 0');
    expect(sampledGaussianRdp(0.1, 0, 2)).toBe(Infinity);
  });

  it('continues from a saved state as if never interrupted', () => {
    const straight = new PrivacyAccountant(1e-5);
    straight.addRounds(0.1, 1.1, 3);
    const saved = straight.saveState();
    straight.addRounds(0.2, 1.1, 2);
    const resumed = new PrivacyAccountant(1e-5);
    resumed.loadState(saved.rdp, saved.rounds);
    resumed.addRounds(0.2, 1.1, 2);
    expect(resumed.spent()).toEqual(straight.spent());
    expect(() => resumed.loadState([1, 2], 1)).toThrow(/orders does not fit/);
    expect(() => resumed.loadState(new Float64Array(saved.rdp.length).fill(-1), 1)).toThrow(/not a non-negative number/);
  });
});
