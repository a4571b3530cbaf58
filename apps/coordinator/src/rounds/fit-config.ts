import { ClientConfig, QFFL_LOSS_REQUEST } from '@fl/aggregation';
import { FitConfig } from '@fl/contracts';

/** What a strategy's fit config may set in the workers' FitConfig. */
export type StrategyFitConfig = Pick<FitConfig, 'proximal_mu' | 'report_loss_before_fit'>;

/**
 * The entries of a strategy's fit config (Flower's names) that edge workers
 * act on, as FitConfig fields: FedProx's `proximal_mu` and QFedAvg's request
 * for `loss_before_fit`. The FedOpt family's `eta_l` is not among them: the
 * gateway stores it as the task's `learning_rate`, which the workers get as
 * such. A value of the wrong type is a programming error, not a worker's.
 */
export function strategyFitConfig(config: ClientConfig = {}): StrategyFitConfig {
  const out: StrategyFitConfig = {};
  const mu = config['proximal_mu'];
  if (mu !== undefined) {
    if (typeof mu !== 'number' || !(mu >= 0)) throw new Error(`fit config: proximal_mu must be a number >= 0, got ${JSON.stringify(mu)}`);
    if (mu > 0) out.proximal_mu = mu;
  }
  const lossRequest = config[QFFL_LOSS_REQUEST];
  if (lossRequest !== undefined) {
    if (typeof lossRequest !== 'boolean') throw new Error(`fit config: ${QFFL_LOSS_REQUEST} must be a boolean, got ${JSON.stringify(lossRequest)}`);
    if (lossRequest) out.report_loss_before_fit = true;
  }
  return out;
}
