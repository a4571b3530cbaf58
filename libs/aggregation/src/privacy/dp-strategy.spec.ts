import { fit, flat, weights } from '../../test/support';
import { createStrategy } from '../registry';
import { l2Distance } from '../weight-arithmetic';
import { clipFactor, privatizeUpdateLocally } from './clipping';
import { withDifferentialPrivacy } from './dp-strategy';
import { GaussianNoise } from './gaussian-noise';
import { PrivacyParameterError, resolvePrivacyParameters, updateNoiseMultiplier } from './privacy-parameters';

describe('client-level DP-FedAvg', () => {
  const zeros = weights(new Array(9).fill(0));
  const along = (x: number) => [x, 0, 0, 0, 0, 0, 0, 0, 0];

  it('without noise: clips each difference to C and averages unweighted over the sampled workers', () => {
    const dp = withDifferentialPrivacy(createStrategy('FedAvg'), resolvePrivacyParameters({ noise_multiplier: 0, clipping_norm: 1 }), 1);
    dp.configureFit(1, ['a', 'b', 'c', 'd']); // four sampled, three answer
    const out = dp.aggregateFit(1, zeros, [fit('a', along(10), 1000), fit('b', along(0.5), 1), fit('c', along(-3), 1)]);
    // clipped: 1, 0.5, -1; fixed denominator 4
    expect(flat(out.parameters)[0]).toBeCloseTo(0.5 / 4, 7);
    expect(out.metrics).toMatchObject({ dp_clipping_norm: 1, dp_noise_stddev: 0 });
  });

  it('adds N(0, (z C / m)^2) to the average', () => {
    const dp = withDifferentialPrivacy(createStrategy('FedAvg'), resolvePrivacyParameters({ noise_multiplier: 2, clipping_norm: 0.5 }), 11);
    const big = new Map([['w', { shape: [50_000], data: new Float32Array(50_000) }]]);
    const update = new Map([['w', { shape: [50_000], data: new Float32Array(50_000) }]]);
    const out = dp.aggregateFit(1, big, [
      { node: 'a', parameters: update, numExamples: 1 },
      { node: 'b', parameters: update, numExamples: 1 },
    ]);
    const v = out.parameters.get('w')!.data;
    const sd = Math.sqrt(v.reduce((a, x) => a + x * x, 0) / v.length);
    expect(Math.abs(sd - (2 * 0.5) / 2) / 0.5).toBeLessThan(0.02);
    expect(out.metrics.dp_noise_stddev).toBeCloseTo(0.5, 12);
  });

  it('runs the inner strategy\'s server step on the noised average (FedAvgM)', () => {
    const dp = withDifferentialPrivacy(createStrategy('FedAvgM', { server_learning_rate: 2 }), resolvePrivacyParameters({ noise_multiplier: 0, clipping_norm: 10 }), 1);
    const out = dp.aggregateFit(1, zeros, [fit('a', along(1), 5), fit('b', along(3), 5)]);
    expect(flat(out.parameters)[0]).toBeCloseTo(4, 6); // 0 - 2 * (0 - 2)
  });

  it('adapts the clipping norm geometrically towards the target quantile (Andrew et al. 2021)', () => {
    const p = resolvePrivacyParameters({ noise_multiplier: 0, clipping_norm: 1, adaptive_clipping: true, clipped_count_stddev: 0, target_clipped_quantile: 0.5, clip_norm_lr: 0.2 });
    const dp = withDifferentialPrivacy(createStrategy('FedAvg'), p, 1);
    // All four updates have norm 3 > C: unclipped fraction 0, so C <- C exp(-0.2 (0 - 0.5)) = C e^0.1.
    const r = [1, 2, 3, 4].map((k) => fit(`n${k}`, along(3), 1));
    dp.aggregateFit(1, zeros, r);
    expect(dp.currentClippingNorm).toBeCloseTo(Math.exp(0.1), 12);
    for (let i = 2; i <= 20; i++) dp.aggregateFit(i, zeros, r);
    // Grows until the norm-3 updates fit, then hovers around 3.
    expect(dp.currentClippingNorm).toBeGreaterThan(2.5);
    expect(dp.currentClippingNorm).toBeLessThan(3.7);
  });

  it('splits the noise budget between the count and the update (Andrew et al. 2021, Theorem 1)', () => {
    const zDelta = updateNoiseMultiplier(1, 5);
    expect((zDelta ** -2 + 10 ** -2) ** -0.5).toBeCloseTo(1, 12);
    expect(() => updateNoiseMultiplier(1, 0.4)).toThrow(PrivacyParameterError);
  });

  it('in local mode sends the settings to the workers, which clip and noise their own updates', () => {
    const dp = withDifferentialPrivacy(createStrategy('FedMedian'), resolvePrivacyParameters({ mode: 'local', noise_multiplier: 0.5, clipping_norm: 2 }), 1);
    expect(dp.configureFit(1, ['a', 'b'])[0].config).toEqual({ dp_clipping_norm: 2, dp_noise_multiplier: 0.5 });
    expect(dp.fitConfig(1)).toEqual({ dp_clipping_norm: 2, dp_noise_multiplier: 0.5 });
    // the inner strategy's fit config goes along: FedProx's workers still get proximal_mu
    const central = resolvePrivacyParameters({ mode: 'central', noise_multiplier: 0.5, clipping_norm: 2 });
    expect(withDifferentialPrivacy(createStrategy('FedProx', { proximal_mu: 0.1 }), central, 1).fitConfig(1)).toEqual({ proximal_mu: 0.1 });
    const noNoise = privatizeUpdateLocally(weights(along(6)), zeros, { clippingNorm: 2, noiseMultiplier: 0 }, new GaussianNoise(1));
    expect(flat(noNoise)).toEqual(along(2));
    const noised = privatizeUpdateLocally(weights(along(6)), zeros, { clippingNorm: 2, noiseMultiplier: 0.5 }, new GaussianNoise(1));
    expect(l2Distance(noised, noNoise)).toBeGreaterThan(0);
  });

  it('refuses central DP around a rule that does not average, and bad settings by name', () => {
    expect(() => withDifferentialPrivacy(createStrategy('Krum'), resolvePrivacyParameters({ noise_multiplier: 1, clipping_norm: 1 }), 1)).toThrow(
      "central differential privacy needs a strategy that averages (FedAvg, FedAvgM, FedProx, FedAdagrad, FedAdam, FedYogi); 'Krum' does not",
    );
    expect(() => resolvePrivacyParameters({ noise_multiplier: 1 })).toThrow("differential privacy: parameter 'clipping_norm' is required");
    expect(() => resolvePrivacyParameters({ noise_multiplier: -1, clipping_norm: 1 })).toThrow("parameter 'noise_multiplier' must be >= 0, got -1");
    expect(() => resolvePrivacyParameters({ noise_multiplier: 1, clipping_norm: 1, mode: 'edge' })).toThrow("parameter 'mode' must be 'central' or 'local'");
    expect(() => resolvePrivacyParameters({ noise_multiplier: 1, clipping_norm: 1, sigma: 1 })).toThrow("parameter 'sigma' is not a privacy parameter");
    expect(clipFactor(4, 2)).toBe(0.5);
    expect(clipFactor(1, 2)).toBe(1);
  });

  it('keeps the inner state and the adaptive clipping norm through a checkpoint: a resumed task aggregates as an uninterrupted one', () => {
    const privacy = resolvePrivacyParameters({ noise_multiplier: 0, clipping_norm: 1, adaptive_clipping: true, target_clipped_quantile: 0.9, clipped_count_stddev: 0 });
    const rounds = [
      [fit('a', along(3), 1), fit('b', along(0.2), 1)],
      [fit('a', along(-2), 1), fit('b', along(0.1), 1)],
    ];
    const straight = withDifferentialPrivacy(createStrategy('FedAdam', { eta: 0.5 }), privacy, 1);
    let w = straight.aggregateFit(1, zeros, rounds[0]).parameters;
    const saved = straight.saveServerState();
    expect([...saved.keys()]).toEqual(expect.arrayContaining(['dp/clipping_norm', expect.stringMatching(/^m\//), expect.stringMatching(/^v\//)]));
    expect(saved.get('dp/clipping_norm')![0]).not.toBe(1); // one of two unclipped: the norm moved
    const after = straight.aggregateFit(2, w, rounds[1]).parameters;

    const resumed = withDifferentialPrivacy(createStrategy('FedAdam', { eta: 0.5 }), privacy, 1);
    resumed.loadServerState(saved, w);
    expect(resumed.currentClippingNorm).toBe(saved.get('dp/clipping_norm')![0]);
    w = resumed.aggregateFit(2, w, rounds[1]).parameters;
    expect(flat(w)).toEqual(flat(after));
    expect(() => resumed.loadServerState(new Map([['dp/clipping_norm', Float64Array.of(-1)]]), w)).toThrow('dp/clipping_norm must be one positive number');
  });

  it('draws secure noise: standard normal, and never the same stream twice', () => {
    const a = GaussianNoise.secure();
    const n = 200_000;
    let sum = 0;
    let squares = 0;
    for (let i = 0; i < n; i++) {
      const x = a.next();
      sum += x;
      squares += x * x;
    }
    // Standard errors: 0.0022 for the mean, 0.0032 for the variance; the bounds are 9 of them.
    expect(Math.abs(sum / n)).toBeLessThan(0.02);
    expect(Math.abs(squares / n - 1)).toBeLessThan(0.03);
    const b = GaussianNoise.secure();
    const c = GaussianNoise.secure();
    expect(Array.from({ length: 8 }, () => b.next())).not.toEqual(Array.from({ length: 8 }, () => c.next()));
  });
});
