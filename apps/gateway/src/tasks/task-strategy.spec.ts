import { listStrategies, StrategyParameterError } from '@fl/aggregation';
import { platformStrategies, resolveTaskStrategy } from './task-strategy';

describe('resolveTaskStrategy', () => {
  it("keeps the legacy 'fedavg' (also the default) as written, with FedAvg's parameters", () => {
    const expected = { strategy: 'fedavg', strategy_params: { min_fit_clients: 1, fraction_fit: 1, fraction_evaluate: 1, min_evaluate_clients: 1, min_available_clients: 1 }, min_fit_clients: 1, fraction_fit: 1, learning_rate: 0.3 };
    expect(resolveTaskStrategy({})).toEqual(expected);
    expect(resolveTaskStrategy({ strategy: 'fedavg' })).toEqual(expected);
  });

  it('spells other names as the registry does and applies the defaults', () => {
    expect(resolveTaskStrategy({ strategy: 'fedavgm', strategy_params: { server_momentum: 0.9 }, min_fit_clients: 3 })).toEqual({
      strategy: 'FedAvgM',
      strategy_params: { server_learning_rate: 1, server_momentum: 0.9, min_fit_clients: 3, fraction_fit: 1, fraction_evaluate: 1, min_evaluate_clients: 1, min_available_clients: 1 },
      min_fit_clients: 3,
      fraction_fit: 1,
      learning_rate: 0.3,
    });
    // eta_l is the task's learning_rate: its default is the task's (0.3), not Flower's 0.1
    expect(resolveTaskStrategy({ strategy: 'FedAdam' }).strategy_params).toEqual({ eta: 0.1, eta_l: 0.3, beta_1: 0.9, beta_2: 0.99, tau: 1e-9, min_fit_clients: 1, fraction_fit: 1, fraction_evaluate: 1, min_evaluate_clients: 1, min_available_clients: 1 });
  });

  it("takes the FedOpt family's eta_l as the task's learning_rate, in either place, and refuses two different values", () => {
    expect(resolveTaskStrategy({ strategy: 'FedAdam', strategy_params: { eta_l: 0.05 } })).toMatchObject({ learning_rate: 0.05, strategy_params: { eta_l: 0.05 } });
    expect(resolveTaskStrategy({ strategy: 'FedYogi', learning_rate: 0.02 })).toMatchObject({ learning_rate: 0.02, strategy_params: { eta_l: 0.02 } });
    expect(resolveTaskStrategy({ strategy: 'FedAdagrad', learning_rate: 0.1, strategy_params: { eta_l: 0.1 } }).learning_rate).toBe(0.1);
    expect(() => resolveTaskStrategy({ strategy: 'FedAdam', learning_rate: 0.1, strategy_params: { eta_l: 0.05 } })).toThrow(
      "strategy 'FedAdam': parameter 'eta_l' is given twice with different values: 0.1 as the task's learning_rate, 0.05 in strategy_params",
    );
    // other strategies keep the task's learning_rate and have no eta_l
    expect(resolveTaskStrategy({ strategy: 'FedProx', learning_rate: 0.05, strategy_params: { proximal_mu: 0.1 } })).toMatchObject({
      learning_rate: 0.05,
      strategy_params: { proximal_mu: 0.1, min_fit_clients: 1, fraction_fit: 1 },
    });
    expect(() => resolveTaskStrategy({ strategy: 'FedAvg', strategy_params: { eta_l: 0.05 } })).toThrow("parameter 'eta_l' is not a parameter of FedAvg");
  });

  it('takes QFedAvg, whose workers report loss_before_fit', () => {
    expect(resolveTaskStrategy({ strategy: 'qfedavg' })).toMatchObject({ strategy: 'QFedAvg', strategy_params: { q_param: 0.2, qffl_learning_rate: 0.1 } });
  });

  it('takes min_fit_clients and fraction_fit from strategy_params too, and refuses two different values', () => {
    const r = resolveTaskStrategy({ strategy: 'Krum', strategy_params: { num_malicious_clients: 1, min_fit_clients: 5 } });
    expect(r.min_fit_clients).toBe(5);
    expect(r.strategy_params.min_fit_clients).toBe(5);
    expect(resolveTaskStrategy({ strategy: 'FedMedian', min_fit_clients: 3, strategy_params: { min_fit_clients: 3 } }).min_fit_clients).toBe(3);
    expect(() => resolveTaskStrategy({ strategy: 'FedMedian', min_fit_clients: 3, strategy_params: { min_fit_clients: 2 } })).toThrow(
      "strategy 'FedMedian': parameter 'min_fit_clients' is given twice with different values: 3 at the top level, 2 in strategy_params",
    );
  });

  it.each([
    [{ strategy: 'FedNothing' }, null, 'is not a known strategy'],
    [{ strategy: 'FedAdam', strategy_params: { beta_1: 1.5 } }, 'beta_1', 'must be >= 0 and < 1, got 1.5'],
    [{ strategy: 'FedAvgM', strategy_params: { momentum: 0.9 } }, 'momentum', 'is not a parameter of FedAvgM'],
    [{ strategy: 'FedTrimmedAvg', strategy_params: { beta: 'a lot' } }, 'beta', 'must be a finite number, got "a lot"'],
    [{ strategy: 'FedProx' }, 'proximal_mu', 'is required'],
    [{ strategy: 'Krum', strategy_params: { num_malicious_clients: 1 } }, 'min_fit_clients', 'must be at least 5'],
    [{ strategy: 'FedAvg', strategy_params: { min_evaluate_clients: 0 } }, 'min_evaluate_clients', 'must be >= 1'],
  ])('refuses %j naming %s', (input, parameter, problem) => {
    let caught: unknown;
    try {
      resolveTaskStrategy(input as never);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(StrategyParameterError);
    expect((caught as StrategyParameterError).parameter).toBe(parameter);
    expect((caught as StrategyParameterError).message).toContain(problem);
  });
});

describe('platformStrategies', () => {
  it("lists every strategy of the registry with the parameters a task takes, the task's sampling defaults, and what runs differently here", () => {
    const list = platformStrategies();
    expect(list.map((s) => s.name)).toEqual(listStrategies().map((s) => s.name));
    const fedavgm = list.find((s) => s.name === 'FedAvgM')!;
    expect(fedavgm.parameters.map((p) => [p.name, p.default])).toEqual([
      ['server_learning_rate', 1],
      ['server_momentum', 0],
      ['fraction_fit', 1],
      ['fraction_evaluate', 1],
      ['min_fit_clients', 1],
      ['min_evaluate_clients', 1],
      ['min_available_clients', 1],
    ]);
    expect(fedavgm).toMatchObject({ available: true, limitation: null, streaming: true });
    // every strategy runs as published: FedProx's workers add the proximal term, QFedAvg's report their loss, eta_l is the workers' learning rate
    for (const s of list) expect(s).toMatchObject({ available: true, limitation: null });
    expect(fedavgm.parameters.find((p) => p.name === 'fraction_evaluate')!.description).toContain('0 means exactly min_evaluate_clients');
    expect(list.find((s) => s.name === 'FedAdam')!.parameters.find((p) => p.name === 'eta_l')).toMatchObject({
      default: 0.3,
      description: expect.stringContaining("The same as the task's top-level learning_rate"),
    });
  });
});
