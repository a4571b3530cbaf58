import { aggregateBench } from './aggregate.bench';
import { demoBench } from './demo.bench';
import { largeModelBench } from './large-model.bench';
import { messagingBench } from './messaging.bench';
import { QUALITY_USE_CASES, qualityBench } from './quality.bench';
import { roundBench } from './round.bench';
import { roundsBench } from './rounds.bench';
import { trainStepBench } from './train-step.bench';
import { transferBench } from './transfer.bench';

/**
 * `npm run bench [-- <name>...] [--rounds 21] [--repeats 2] [--iterations 200] [--runs 3] [--cases p2,s1000] [--evaluation chained,apart] [--round-events 250,0] [--against ../base/dist] [--turns 3]`
 * Runs the named benchmarks (default: all) one after another; each prints its
 * tables and writes bench-results/<name>.json. Benchmarks, not tests: nothing
 * is asserted, each compares against a baseline measured in the same run.
 * `quality [--seeds 10] [--rounds 30] [--local-epochs <use case default>] [--sites 3] [--alpha 0.5] [--use-cases iris,digits]`
 * runs in-process, without RabbitMQ or PostgreSQL. The others need RabbitMQ (FL_BENCH_RABBITMQ_URL, default amqp://guest:guest@127.0.0.1:5672,
 * with rabbitmqctl on this machine for the throw-away vhost) and PostgreSQL
 * (FL_TEST_PG_URL, default postgres://postgres@127.0.0.1:5432/postgres).
 */
const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
/** `--name value`; undefined when not given. */
const stringOption = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
/** `--name a,b,c` as a list; undefined when not given. */
const listOption = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]?.split(',') : undefined;
};

const BENCHMARKS: Record<string, () => Promise<void>> = {
  messaging: () => messagingBench({ iterations: option('iterations', 200) }),
  round: () => roundBench({ rounds: option('rounds', 21), repeats: option('repeats', 2) }),
  rounds: () => roundsBench({ rounds: option('rounds', 0) || undefined, cases: listOption('cases'), evaluation: listOption('evaluation'), roundEvents: listOption('round-events'), against: stringOption('against'), turns: option('turns', 1) }),
  demo: () => demoBench({ runs: option('runs', 3) }),
  'large-model': () => largeModelBench({ mb: option('mb', 1024), strategies: listOption('strategies') ?? ['FedAvg'] }),
  'train-step': () => trainStepBench({ threads: option('threads', 2), iterations: option('iterations', 500) }),
  aggregate: () => aggregateBench({ maxValues: option('max-values', 1e7), repeats: option('repeats', 3) }),
  transfer: () => transferBench({ sizesMB: [100, 600], repeats: option('repeats', 1) }),
  quality: () =>
    qualityBench({
      seeds: option('seeds', 10),
      rounds: option('rounds', 30),
      localEpochs: option('local-epochs', 0),
      sites: option('sites', 3),
      alpha: option('alpha', 0.5),
      useCases: args.includes('--use-cases') ? (args[args.indexOf('--use-cases') + 1] ?? '').split(',') : QUALITY_USE_CASES,
    }),
};

async function main(): Promise<void> {
  const names = args.filter((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--'));
  const unknown = names.filter((n) => !BENCHMARKS[n]);
  if (unknown.length) throw new Error(`unknown benchmark(s) ${unknown.join(', ')}; choose from ${Object.keys(BENCHMARKS).join(', ')}`);
  for (const name of names.length ? names : Object.keys(BENCHMARKS)) {
    console.log(`\n=== ${name} ===`);
    await BENCHMARKS[name]();
  }
}

// Nest and the broker clients may leave timers behind; everything the benchmarks created is closed by
// then, so exit once stdout is flushed.
const exit = (code: number) => process.stdout.write('', () => process.exit(code));
main().then(
  () => exit(0),
  (err) => {
    console.error(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : err}`);
    exit(1);
  },
);
