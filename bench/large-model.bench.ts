import { spawn } from 'node:child_process';
import { writeResult } from './support/results';

/**
 * `npm run bench -- large-model [--mb 1024] [--strategies FedAvg,FedAdam,FedMedian,QFedAvg,FedAvg+DP]`:
 * the large-model e2e test (test/large-model.e2e-spec.ts) with a model of
 * `mb` MiB, 1 GiB by default: 2 rounds, 3 workers, over the local RabbitMQ
 * and PostgreSQL, against the build `npm run bench` made, for each case
 * (FedAvg by default; FedAvg+DP is FedAvg with central differential privacy).
 * Prints the coordinator's peak resident memory against the model's size, the
 * task's time, each process's CPU time and each one's longest event-loop
 * stall over the task (all kept in the JSON); the test itself
 * fails beyond its bound (3 x for FedAvg, 4 x for FedMedian, 5 x
 * for QFedAvg and FedAvg+DP, 8 x for FedAdam). Here rather
 * than in the e2e suite because it takes about 10 minutes on the project's
 * machine (the suite runs it with 128 MiB).
 */
export async function largeModelBench(opts: { mb: number; strategies: string[] }): Promise<void> {
  const out: string[] = [];
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(process.execPath, ['node_modules/.bin/jest', '--config', 'test/jest-e2e.config.js', 'test/large-model.e2e-spec.ts'], {
      env: { ...process.env, FL_LARGE_MODEL_MB: String(opts.mb), FL_LARGE_MODEL_STRATEGIES: opts.strategies.join(',') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const stream of [child.stdout!, child.stderr!]) {
      stream.on('data', (d: Buffer) => {
        process.stdout.write(d);
        out.push(d.toString('utf8'));
      });
    }
    child.on('error', reject);
    child.on('exit', resolve);
  });
  const lines = [...out.join('').matchAll(/([\w+]+), model [\d.]+ GiB .*coordinator peak RSS ([\d.]+) GiB = ([\d.]+) x the model.*/g)];
  console.log(lines.length ? `\n${lines.map((l) => l[0]).join('\n')}` : '\nno figure printed: see the output above');
  const runs = lines.map((l) => {
    const timing = /task ([\d.]+) s, CPU time coordinator ([\d.]+) s, workers ([\d. /]+) s; coordinator's event loop held ([\d.]+) s at most, the workers' ([\d. /]+) s/.exec(l[0]);
    return {
      strategy: l[1],
      peak_rss_gib: Number(l[2]),
      peak_over_model: Number(l[3]),
      ...(timing
        ? {
            task_s: Number(timing[1]),
            coordinator_cpu_s: Number(timing[2]),
            worker_cpu_s: timing[3].split(' / ').map(Number),
            longest_event_loop_stall_s: Number(timing[4]),
            workers_longest_event_loop_stall_s: timing[5].split(' / ').map(Number),
          }
        : {}),
    };
  });
  const file = writeResult('large-model', { model_mib: opts.mb, strategies: opts.strategies, passed: code === 0, runs });
  console.log(`written ${file}`);
  if (code !== 0) throw new Error(`the large-model test failed (exit code ${code})`);
}
