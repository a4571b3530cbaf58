import { spawn } from 'node:child_process';
import { writeResult } from './support/results';

/**
 * `npm run bench -- large-model [--mb 1024]`: the large-model e2e test
 * (test/large-model.e2e-spec.ts) with a model of `mb` MiB, 1 GiB by default:
 * 2 rounds, 3 workers, over the local RabbitMQ and PostgreSQL, against the
 * build `npm run bench` made. Prints the coordinator's peak resident memory
 * against the model's size; the test itself fails beyond 3 x. Here rather
 * than in the e2e suite because it takes about 10 minutes on the project's
 * machine (the suite runs it with 128 MiB).
 */
export async function largeModelBench(opts: { mb: number }): Promise<void> {
  const out: string[] = [];
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(process.execPath, ['node_modules/.bin/jest', '--config', 'test/jest-e2e.config.js', 'test/large-model.e2e-spec.ts'], {
      env: { ...process.env, FL_LARGE_MODEL_MB: String(opts.mb) },
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
  const line = out.join('').match(/model [\d.]+ GiB .*coordinator peak RSS ([\d.]+) GiB = ([\d.]+) x the model.*/);
  console.log(line ? `\n${line[0]}` : '\nno figure printed: see the output above');
  const file = writeResult('large-model', { model_mib: opts.mb, passed: code === 0, peak_rss_gib: line ? Number(line[1]) : null, peak_over_model: line ? Number(line[2]) : null });
  console.log(`written ${file}`);
  if (code !== 0) throw new Error(`the large-model test failed (exit code ${code})`);
}
