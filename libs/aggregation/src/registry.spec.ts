import { createStrategy, listStrategies, resolveStrategyParameters, StrategyParameterError } from './registry';

describe('strategy registry', () => {
  it('lists every strategy with its parameters and Flower\'s defaults', () => {
    const list = listStrategies();
    expect(list.map((s) => s.name)).toEqual(['FedAvg', 'FedAvgM', 'FedProx', 'FedAdagrad', 'FedAdam', 'FedYogi', 'QFedAvg', 'FedMedian', 'FedTrimmedAvg', 'Krum', 'Bulyan']);
    const defaults = (name: string) => Object.fromEntries(list.find((s) => s.name === name)!.parameters.map((p) => [p.name, p.default]));
    expect(defaults('FedAdam')).toMatchObject({ eta: 0.1, eta_l: 0.1, beta_1: 0.9, beta_2: 0.99, tau: 1e-9 });
    expect(defaults('FedYogi')).toMatchObject({ eta: 0.01, eta_l: 0.0316, beta_1: 0.9, beta_2: 0.99, tau: 1e-3 });
    expect(defaults('FedAdagrad')).toMatchObject({ eta: 0.1, eta_l: 0.1, tau: 1e-9 });
    expect(defaults('FedAvg')).toEqual({ fraction_fit: 1, fraction_evaluate: 1, min_fit_clients: 2, min_evaluate_clients: 2, min_available_clients: 2 });
    expect(defaults('FedProx').proximal_mu).toBeUndefined();
    expect(JSON.parse(JSON.stringify(list))).toEqual(list);
  });

  it('applies defaults and finds names case-insensitively', () => {
    const { name, parameters } = resolveStrategyParameters('fedtrimmedavg', { min_fit_clients: 5 });
    expect(name).toBe('FedTrimmedAvg');
    expect(parameters).toMatchObject({ beta: 0.2, min_fit_clients: 5, fraction_fit: 1 });
    expect(createStrategy('FedAdam').name).toBe('FedAdam');
  });

  it.each([
    ['FedTrimmedAvg', { beta: 0.5 }, "strategy 'FedTrimmedAvg': parameter 'beta' must be >= 0 and < 0.5, got 0.5"],
    ['FedAdam', { eta: '0.1' }, "strategy 'FedAdam': parameter 'eta' must be a finite number, got \"0.1\""],
    ['FedAdam', { tau: 0 }, "strategy 'FedAdam': parameter 'tau' must be > 0, got 0"],
    ['FedProx', {}, "strategy 'FedProx': parameter 'proximal_mu' is required"],
    ['FedAvg', { etaa: 1 }, "strategy 'FedAvg': parameter 'etaa' is not a parameter of FedAvg; its parameters are fraction_fit, fraction_evaluate, min_fit_clients, min_evaluate_clients, min_available_clients"],
    ['FedAvg', { min_fit_clients: 2.5 }, "strategy 'FedAvg': parameter 'min_fit_clients' must be an integer, got 2.5"],
    ['FedAvg', { fraction_fit: 1.5 }, "strategy 'FedAvg': parameter 'fraction_fit' must be >= 0 and <= 1, got 1.5"],
    ['Krum', { num_malicious_clients: 2, min_fit_clients: 6 }, "strategy 'Krum': parameter 'min_fit_clients' must be at least 7 (2 * num_malicious_clients + 3) for Krum, got 6"],
    ['Krum', { num_clients_to_keep: 3 }, "strategy 'Krum': parameter 'num_clients_to_keep' must not exceed min_fit_clients (2), got 3"],
    ['Bulyan', { num_malicious_clients: 1, min_fit_clients: 6 }, "strategy 'Bulyan': parameter 'min_fit_clients' must be at least 7 (4 * num_malicious_clients + 3) for Bulyan, got 6"],
    ['FedSGD', {}, "strategy 'FedSGD': is not a known strategy; choose from FedAvg, FedAvgM, FedProx, FedAdagrad, FedAdam, FedYogi, QFedAvg, FedMedian, FedTrimmedAvg, Krum, Bulyan"],
  ])('%s %j is refused', (name, given, message) => {
    expect(() => resolveStrategyParameters(name, given)).toThrow(StrategyParameterError);
    expect(() => resolveStrategyParameters(name, given)).toThrow(message);
  });
});
