import { fit, flat, weights } from '../../test/support';
import { DEFAULT_SAMPLING } from '../base-strategy';
import { QFedAvg } from './qfedavg.strategy';

describe('QFedAvg', () => {
  const current = weights(new Array(9).fill(0));

  it('asks every worker for its loss on the received weights in the fit config', () => {
    const s = new QFedAvg({ ...DEFAULT_SAMPLING, q_param: 0.2, qffl_learning_rate: 0.1 });
    expect(s.fitConfig()).toEqual({ report_loss_before_fit: true });
    for (const i of s.configureFit(1, ['a', 'b'], { local_epochs: 2 })) expect(i.config).toEqual({ local_epochs: 2, report_loss_before_fit: true });
  });

  it('with q = 0 takes the plain average step scaled by L / (L + 0): the mean of the workers\' weights', () => {
    const s = new QFedAvg({ ...DEFAULT_SAMPLING, q_param: 0, qffl_learning_rate: 0.1 });
    const out = s.aggregateFit(1, current, [fit('a', new Array(9).fill(1), 5, { loss_before_fit: 3 }), fit('b', new Array(9).fill(3), 50, { loss_before_fit: 1 })]);
    // q = 0: h_k = L, so w = 0 - sum L (0 - w_k) / (2 L) = mean = 2, whatever the losses and example counts.
    expect(flat(out.parameters)[0]).toBeCloseTo(2, 6);
  });

  it('weighs the worker with the higher loss more when q > 0', () => {
    const s = new QFedAvg({ ...DEFAULT_SAMPLING, q_param: 2, qffl_learning_rate: 1 });
    const out = s.aggregateFit(1, current, [fit('a', new Array(9).fill(1), 5, { loss_before_fit: 3 }), fit('b', new Array(9).fill(-1), 5, { loss_before_fit: 1 })]);
    expect(flat(out.parameters)[0]).toBeGreaterThan(0);
  });

  it('refuses an update without the loss it needs', () => {
    const agg = new QFedAvg({ ...DEFAULT_SAMPLING, q_param: 0.2, qffl_learning_rate: 0.1 }).beginFit(1, current);
    expect(() => agg.add(fit('a', new Array(9).fill(1), 5))).toThrow("QFedAvg needs the fit metric 'loss_before_fit'");
  });
});
