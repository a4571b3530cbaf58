import { PrivacyAccountant, PrivacyParameters, PrivacySpent, StateMap } from '@fl/aggregation';
import { PrivacySettings } from '@fl/contracts';

/** The next round would take epsilon beyond the task's budget: the task stops before it. */
export class PrivacyBudgetReached extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PrivacyBudgetReached';
  }
}

const RDP = 'privacy/rdp';
const ROUNDS = 'privacy/rounds';

/**
 * A differentially private task's privacy: the RDP accountant of the sampled
 * Gaussian mechanism, one mechanism per round, kept with each checkpoint so a
 * resumed task goes on counting; and the budget, checked before each round.
 *
 * The sampling rate of a round is q = workers asked / workers available with
 * central noise (the coordinator's sampling hides who took part from anyone
 * who sees only the model). With local noise each site's guarantee is
 * against the coordinator, which knows who took part: q = 1.
 */
export class PrivacyBudget {
  readonly parameters: PrivacyParameters;
  private readonly accountant: PrivacyAccountant;

  constructor(readonly settings: PrivacySettings) {
    const { delta, epsilon_budget: _budget, ...parameters } = settings;
    this.parameters = parameters;
    this.accountant = new PrivacyAccountant(delta);
  }

  /** The state keys this class adds to a checkpoint's strategy state, removed before the strategy sees it. */
  static without(state: StateMap): StateMap {
    return new Map([...state].filter(([k]) => !k.startsWith('privacy/')));
  }

  private rate(sampled: number, population: number): number {
    return this.parameters.mode === 'central' ? Math.min(1, sampled / Math.max(1, population, sampled)) : 1;
  }

  /** Throws PrivacyBudgetReached when one more round at this sampling would exceed the budget. */
  checkNextRound(round: number, sampled: number, population: number): void {
    const budget = this.settings.epsilon_budget;
    if (budget === undefined) return;
    const next = this.accountant.epsilonAfterNextRound(this.rate(sampled, population), this.parameters.noise_multiplier);
    if (next > budget) {
      const now = this.accountant.rounds ? this.accountant.spent().epsilon : 0;
      throw new PrivacyBudgetReached(
        `privacy budget reached: round ${round} would take epsilon from ${now.toFixed(3)} to ${next.toFixed(3)}, beyond epsilon_budget ${budget} (delta ${this.settings.delta})`,
      );
    }
  }

  /** Records one round: its aggregate was computed and is being sent out. */
  spend(sampled: number, population: number): void {
    this.accountant.addRounds(this.rate(sampled, population), this.parameters.noise_multiplier);
  }

  spent(): PrivacySpent {
    return this.accountant.spent();
  }

  /** What each worker needs in local mode to clip and noise its own update. */
  workerConfig(): { dp_clipping_norm: number; dp_noise_multiplier: number } | undefined {
    if (this.parameters.mode !== 'local') return undefined;
    return { dp_clipping_norm: this.parameters.clipping_norm, dp_noise_multiplier: this.parameters.noise_multiplier };
  }

  save(state: StateMap): void {
    const { rdp, rounds } = this.accountant.saveState();
    state.set(RDP, rdp);
    state.set(ROUNDS, Float64Array.of(rounds));
  }

  /** Continues counting from a checkpoint of round `round`, which every differentially private round writes. */
  restore(state: StateMap, round: number): void {
    const rdp = state.get(RDP);
    const rounds = state.get(ROUNDS);
    if (!rdp || !rounds || rounds.length !== 1) throw new Error(`it holds no privacy accounting for the ${round} round(s) it completed`);
    this.accountant.loadState(rdp, rounds[0]);
  }

  /** The task's (epsilon, delta) for its result; none while epsilon is unbounded (no noise). */
  totals(): { epsilon?: number; delta?: number } {
    const { epsilon, delta } = this.accountant.spent();
    return Number.isFinite(epsilon) ? { epsilon, delta } : {};
  }

  /** Tags of the trained model. */
  tags(): Record<string, string> {
    const { epsilon, delta, rounds } = this.accountant.spent();
    const p = this.parameters;
    return {
      dp_mode: p.mode,
      dp_noise_multiplier: String(p.noise_multiplier),
      dp_clipping_norm: String(p.clipping_norm) + (p.adaptive_clipping ? ' (adaptive start)' : ''),
      dp_epsilon: Number.isFinite(epsilon) ? String(epsilon) : 'unbounded (no noise)',
      dp_delta: String(delta),
      dp_rounds: String(rounds),
    };
  }
}
