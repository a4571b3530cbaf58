import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createStrategy, sampledGaussianRdp, WeightMap } from '../src';
import { expectClose, fit, flat, weights } from './support';

/**
 * The strategies against fixtures/reference.json, computed by
 * fixtures/make_reference.py (numpy, written from the papers' formulas).
 * Three rounds each, so the stateful strategies' momentum and moments are
 * checked too; inputs include two hostile updates (sign-flipped x3, +5).
 */
interface Reference {
  initial: number[];
  inputs: { updates: number[][]; examples: number[]; losses: number[] }[];
  cases: { strategy: string; parameters: Record<string, number>; rounds: number[][]; selected?: number[][] }[];
  accountant: { q: number; sigma: number; alpha: number; rdp: number }[];
}

const ref = JSON.parse(readFileSync(join(__dirname, 'fixtures', 'reference.json'), 'utf8')) as Reference;

describe('strategies against the numpy reference', () => {
  it.each(ref.cases.map((c) => [`${c.strategy} ${JSON.stringify(c.parameters)}`, c] as const))('%s', (_label, c) => {
    const strategy = createStrategy(c.strategy, c.parameters);
    let current: WeightMap = weights(ref.initial);
    c.rounds.forEach((expected, r) => {
      const input = ref.inputs[r];
      const results = input.updates.map((u, k) => fit(`site-${k}`, u, input.examples[k], { loss_before_fit: input.losses[k] }));
      const out = strategy.aggregateFit(r + 1, current, results);
      expectClose(flat(out.parameters), expected, 1e-5);
      if (c.selected) expect(out.selectedNodes).toEqual(c.selected[r].map((k) => `site-${k}`));
      current = out.parameters;
    });
  });

  it.each(ref.accountant.map((a) => [a.q, a.sigma, a.alpha, a.rdp]))('RDP of the sampled Gaussian mechanism q=%p sigma=%p alpha=%p matches numerical integration', (q, sigma, alpha, rdp) => {
    expect(Math.abs(sampledGaussianRdp(q, sigma, alpha) - rdp)).toBeLessThanOrEqual(1e-6 * Math.max(1, rdp));
  });
});
