import { createStrategy, resolvePrivacyParameters, withDifferentialPrivacy } from '@fl/aggregation';
import { strategyFitConfig } from './fit-config';

describe('strategyFitConfig', () => {
  const of = (name: string, params: Record<string, number> = {}) => strategyFitConfig(createStrategy(name, params).fitConfig(1));

  it("sends FedProx's proximal_mu and QFedAvg's request for loss_before_fit to the workers", () => {
    expect(of('FedProx', { proximal_mu: 0.1 })).toEqual({ proximal_mu: 0.1 });
    expect(of('QFedAvg')).toEqual({ report_loss_before_fit: true });
  });

  it('sends nothing more for strategies that run on the server alone, nor for proximal_mu 0', () => {
    expect(of('FedAvg')).toEqual({});
    expect(of('Krum', { min_fit_clients: 3 })).toEqual({});
    expect(of('FedProx', { proximal_mu: 0 })).toEqual({});
    // eta_l reaches the workers as the task's learning_rate, which the gateway keeps equal to it
    expect(of('FedAdam', { eta_l: 0.05 })).toEqual({});
  });

  it('keeps the inner strategy\'s entries under differential privacy', () => {
    const dp = withDifferentialPrivacy(createStrategy('FedProx', { proximal_mu: 0.5 }), resolvePrivacyParameters({ mode: 'local', noise_multiplier: 0.1, clipping_norm: 1 }), 1);
    expect(strategyFitConfig(dp.fitConfig(1))).toEqual({ proximal_mu: 0.5 });
  });

  it('refuses a value of the wrong type', () => {
    expect(() => strategyFitConfig({ proximal_mu: 'much' })).toThrow('proximal_mu must be a number >= 0, got "much"');
    expect(() => strategyFitConfig({ report_loss_before_fit: 1 })).toThrow('report_loss_before_fit must be a boolean');
  });
});
