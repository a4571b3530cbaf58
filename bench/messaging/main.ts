import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { runMessagingBench } from './roundtrip.bench';

/**
 * `node dist/bench/messaging/main.js [--url amqp://...] [--iterations 200] [--out bench-results/messaging.json]`
 * The URL may also come from FL_BENCH_RABBITMQ_URL; it is never printed with its password.
 */
async function main(): Promise<void> {
  const arg = (name: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? process.argv[i + 1] : undefined;
  };
  const url = arg('url') ?? process.env.FL_BENCH_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
  const iterations = Number(arg('iterations') ?? 200);
  const out = resolve(arg('out') ?? 'bench-results/messaging.json');

  const result = await runMessagingBench({ url, iterations });
  console.log(`messaging bench against ${result.broker} (node ${result.node})`);
  console.table({
    'round trip, noDelay (ms)': { median: result.roundTrip.noDelay.medianMs, p95: result.roundTrip.noDelay.p95Ms },
    'round trip, Nagle on (ms)': { median: result.roundTrip.nagle.medianMs, p95: result.roundTrip.nagle.p95Ms },
  });
  const t = result.throughput1MiB;
  console.table({
    [`${t.messages} x 1 MiB, persistent, confirmed (MiB/s)`]: { 'publish+confirm': t.publishConfirmedMiBps, 'end to end': t.endToEndMiBps },
  });
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`written ${out}`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
