import { join } from 'node:path';
import { createStrategy, FitRes } from '@fl/aggregation';
import {
  bundledDataDir,
  getUseCase,
  LabeledData,
  loadLabeledCsv,
  modelInputs,
  partitionRows,
  PartitionScheme,
  selectRows,
  splitTrainTest,
  UseCaseDefinition,
} from '@fl/datasets';
import { buildClassifierPackage, createModelRunner, featureSums, ModelRunner, NamedTensors, standardization } from '@fl/models';
import { writeResult } from './support/results';

/**
 * Learning quality: does federated training lose accuracy against training on the pooled data?
 * For each use case and seed: one stratified held-out test set (20% of the rows), and the rest
 *  - pooled, trained centrally for rounds x localEpochs epochs;
 *  - dealt IID to `sites` shards, trained `localEpochs` epochs per round at each site for `rounds`
 *    rounds, FedAvg weighted by examples;
 *  - dealt by Dirichlet(alpha) label skew to `sites` shards, same.
 * Same model (the use case's default package: same graphs, same initial weights), learning rate and
 * batch size (the use case's defaults), same epochs over every training row. In-process, with the
 * edge worker's runner and the coordinator's FedAvg, so it measures learning, not messaging.
 * A benchmark, not a test: nothing is asserted.
 */
export interface QualityBenchOptions {
  seeds: number;
  rounds: number;
  /** Local epochs per round; 0: the use case's default. */
  localEpochs: number;
  sites: number;
  alpha: number;
  useCases: string[];
}

export const QUALITY_USE_CASES = ['iris', 'breast_cancer', 'digits'];
const TEST_FRACTION = 0.2;

interface SeedResult {
  seed: number;
  /** Standardised with the mean and std of the training rows (the use case's statistics are federated). */
  computedStatistics: boolean;
  trainRows: number;
  testRows: number;
  central: number;
  iid: number;
  dirichlet: number;
  iidShards: number[];
  dirichletShards: number[][];
  /** Test accuracy of the global model after each round. */
  iidCurve: number[];
  dirichletCurve: number[];
}

/**
 * The standardisation the model is built with: the use case's own when it gives mean and std;
 * otherwise (statistics computed federatedly at the start of a task) mean and population std of
 * each number feature over the training rows of all sites, i.e. the pooled training rows.
 */
export function normalizationFor(uc: UseCaseDefinition, train: LabeledData): { names: string[]; mean: number[]; std: number[]; computed: boolean } {
  const { names, mean, std, federated } = modelInputs(uc);
  if (!federated) return { names, mean, std, computed: false };
  // What the coordinator computes from the sites' sums, here from all training rows at once.
  return { names, ...standardization(featureSums(train.x, train.n, train.features), federated), computed: true };
}

async function trainCentral(runner: ModelRunner, init: NamedTensors, train: LabeledData, epochs: number, uc: UseCaseDefinition, seed: number): Promise<NamedTensors> {
  const d = uc.model.defaults;
  return (await runner.train(init, train, { epochs, batchSize: d.batch_size, learningRate: d.learning_rate, seed })).weights;
}

/** FedAvg rounds as the coordinator runs them: every site trains from the global weights with the round's seed, updates weighted by examples. */
async function trainFederated(
  runner: ModelRunner,
  init: NamedTensors,
  shards: LabeledData[],
  opts: { rounds: number; localEpochs: number; seed: number },
  uc: UseCaseDefinition,
  test: LabeledData,
): Promise<{ weights: NamedTensors; curve: number[] }> {
  const d = uc.model.defaults;
  const strategy = createStrategy('FedAvg');
  let global = init;
  const curve: number[] = [];
  for (let round = 1; round <= opts.rounds; round++) {
    const results: FitRes[] = [];
    for (const [i, shard] of shards.entries()) {
      const out = await runner.train(global, shard, { epochs: opts.localEpochs, batchSize: d.batch_size, learningRate: d.learning_rate, seed: opts.seed + round });
      results.push({ node: `site-${i + 1}`, parameters: out.weights, numExamples: shard.n });
    }
    global = strategy.aggregateFit(round, global, results).parameters;
    curve.push((await runner.evaluate(global, test)).accuracy);
  }
  return { weights: global, curve };
}

function shardsOf(train: LabeledData, sites: number, scheme: PartitionScheme, seed: number): LabeledData[] {
  return partitionRows(train.labels, sites, scheme, seed).map((rows) => selectRows(train, rows));
}

function classCounts(data: LabeledData, classes: number): number[] {
  const counts = new Array<number>(classes).fill(0);
  for (let r = 0; r < data.n; r++) counts[data.labels[r]]++;
  return counts;
}

async function runSeed(uc: UseCaseDefinition, data: LabeledData, seed: number, opts: QualityBenchOptions, localEpochs: number): Promise<SeedResult> {
  const { train, test } = splitTrainTest(data, TEST_FRACTION, seed);
  const inputs = normalizationFor(uc, train);
  // The default model as publishDefaultModel builds it (initial weights of seed 0 whatever the bench seed).
  const pkg = buildClassifierPackage({
    name: uc.name,
    featureNames: inputs.names,
    classes: uc.label.classes,
    hidden: uc.model.hidden,
    normalization: { mean: inputs.mean, std: inputs.std },
    seed: 0,
    defaults: uc.model.defaults,
  });
  const runner = await createModelRunner(pkg, { intraOpNumThreads: 1 });
  try {
    const C = uc.label.classes.length;
    const central = await trainCentral(runner, pkg.initialWeights, train, opts.rounds * localEpochs, uc, seed);
    const iidShards = shardsOf(train, opts.sites, { kind: 'iid' }, seed);
    const dirShards = shardsOf(train, opts.sites, { kind: 'dirichlet', alpha: opts.alpha }, seed);
    const fed = { rounds: opts.rounds, localEpochs, seed };
    const iid = await trainFederated(runner, pkg.initialWeights, iidShards, fed, uc, test);
    const dir = await trainFederated(runner, pkg.initialWeights, dirShards, fed, uc, test);
    return {
      seed,
      computedStatistics: inputs.computed,
      trainRows: train.n,
      testRows: test.n,
      central: (await runner.evaluate(central, test)).accuracy,
      iid: iid.curve[iid.curve.length - 1],
      dirichlet: dir.curve[dir.curve.length - 1],
      iidShards: iidShards.map((s) => s.n),
      dirichletShards: dirShards.map((s) => classCounts(s, C)),
      iidCurve: iid.curve,
      dirichletCurve: dir.curve,
    };
  } finally {
    await runner.release();
  }
}

const pts = (acc: number) => 100 * acc;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const fmt = (x: number, w: number) => x.toFixed(2).padStart(w);
const signed = (x: number, w: number) => `${x > 0 ? '+' : ''}${x.toFixed(2)}`.padStart(w);

export async function qualityBench(opts: QualityBenchOptions): Promise<void> {
  const seeds = Array.from({ length: opts.seeds }, (_, i) => i + 1);
  console.log(
    `test accuracy in %, ${opts.sites} sites, ${opts.rounds} rounds x local epochs (use case default unless --local-epochs), ` +
      `central = same epochs on the pooled training rows; gap = central - federated in points; seeds ${seeds.join(', ')}`,
  );
  const summary = [];
  const started = performance.now();
  for (const name of opts.useCases) {
    const uc = getUseCase(name);
    const data = loadLabeledCsv(join(bundledDataDir(), `${name}.csv`), uc);
    const localEpochs = opts.localEpochs > 0 ? opts.localEpochs : uc.model.defaults.local_epochs;
    const t0 = performance.now();
    const perSeed: SeedResult[] = [];
    for (const seed of seeds) perSeed.push(await runSeed(uc, data, seed, opts, localEpochs));
    const seconds = (performance.now() - t0) / 1000;
    const d = uc.model.defaults;
    console.log(
      `\n${name}: ${data.n} rows (${perSeed[0].trainRows} train, ${perSeed[0].testRows} test: 1 row = ${(100 / perSeed[0].testRows).toFixed(2)} points), ` +
        `${opts.rounds} rounds x ${localEpochs} local epochs = ${opts.rounds * localEpochs} epochs central, lr ${d.learning_rate}, batch ${d.batch_size}; ` +
        `standardised with ${perSeed[0].computedStatistics ? "the pooled training rows' mean and std (federated statistics)" : "the use case's normalisation"}; ${seconds.toFixed(1)} s`,
    );
    console.log('seed  central  FedAvg IID     gap  FedAvg Dir(0.5)     gap  Dirichlet shards (rows per class)');
    for (const r of perSeed) {
      console.log(
        `${String(r.seed).padStart(4)} ${fmt(pts(r.central), 8)} ${fmt(pts(r.iid), 11)} ${signed(pts(r.central - r.iid), 7)} ${fmt(pts(r.dirichlet), 16)} ${signed(pts(r.central - r.dirichlet), 7)}  ` +
          r.dirichletShards.map((s) => `[${s.join(' ')}]`).join(' '),
      );
    }
    const row = {
      useCase: name,
      rows: data.n,
      testRows: perSeed[0].testRows,
      rounds: opts.rounds,
      localEpochs,
      centralEpochs: opts.rounds * localEpochs,
      learningRate: d.learning_rate,
      batchSize: d.batch_size,
      central: mean(perSeed.map((r) => pts(r.central))),
      iid: mean(perSeed.map((r) => pts(r.iid))),
      dirichlet: mean(perSeed.map((r) => pts(r.dirichlet))),
      iidGap: 0,
      dirichletGap: 0,
      iidWithinOnePoint: false,
      seconds,
      perSeed,
    };
    row.iidGap = row.central - row.iid;
    row.dirichletGap = row.central - row.dirichlet;
    // Rounded first: the means of whole-row accuracies land exactly on 1.00 often enough.
    row.iidWithinOnePoint = Math.abs(Math.round(row.iidGap * 1e6) / 1e6) <= 1;
    console.log(`mean ${fmt(row.central, 8)} ${fmt(row.iid, 11)} ${signed(row.iidGap, 7)} ${fmt(row.dirichlet, 16)} ${signed(row.dirichletGap, 7)}`);
    const at = [...new Set([1, Math.round(opts.rounds / 4), Math.round(opts.rounds / 2), Math.round((3 * opts.rounds) / 4), opts.rounds])].filter((r) => r >= 1);
    const curve = (pick: (r: SeedResult) => number[]) => at.map((k) => fmt(mean(perSeed.map((r) => pts(pick(r)[k - 1]))), 6)).join('');
    console.log(`after round ${at.join(', ')}: FedAvg IID${curve((r) => r.iidCurve)}; Dir(0.5)${curve((r) => r.dirichletCurve)}`);
    summary.push(row);
  }

  console.log(`\nmean over ${opts.seeds} seed(s), test accuracy in %; gap = central - federated, in points`);
  console.log('use case       central  FedAvg IID     gap  FedAvg Dir(0.5)     gap  |IID gap| <= 1');
  for (const r of summary) {
    console.log(
      `${r.useCase.padEnd(13)} ${fmt(r.central, 8)} ${fmt(r.iid, 11)} ${signed(r.iidGap, 7)} ${fmt(r.dirichlet, 16)} ${signed(r.dirichletGap, 7)}  ${r.iidWithinOnePoint ? 'yes' : 'no'}`,
    );
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(`${seconds.toFixed(1)} s in all`);
  const file = writeResult('quality', { ...opts, seedList: seeds, testFraction: TEST_FRACTION, seconds, useCases: summary });
  console.log(`written to ${file}`);
}
