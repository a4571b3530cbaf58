import { runMessagingBench } from './messaging/roundtrip.bench';
import { withCleanup } from './support/cleanup';
import { createBenchVhost } from './support/rabbitmq';
import { writeResult } from './support/results';

/** Broker round trip with noDelay on vs off (the baseline), and 1 MiB confirmed throughput, in a throw-away vhost. */
export async function messagingBench(opts: { iterations: number }): Promise<void> {
  const result = await withCleanup(async (cleanup) => {
    const { url, vhost } = await createBenchVhost(cleanup);
    console.log(`messaging bench: ${opts.iterations} round trips per setting, vhost ${vhost}`);
    return runMessagingBench({ url, iterations: opts.iterations });
  });
  console.log(`against ${result.broker}`);
  const rt = result.roundTrip;
  console.table({
    'round trip, noDelay: true (ms)': { median: rt.noDelay.medianMs, p95: rt.noDelay.p95Ms, min: rt.noDelay.minMs, max: rt.noDelay.maxMs },
    'round trip, noDelay: false, baseline (ms)': { median: rt.nagle.medianMs, p95: rt.nagle.p95Ms, min: rt.nagle.minMs, max: rt.nagle.maxMs },
  });
  const t = result.throughput1MiB;
  console.table({
    [`${t.messages} x 1 MiB, persistent, confirmed (MiB/s)`]: { 'publish+confirm': t.publishConfirmedMiBps, 'end to end': t.endToEndMiBps },
  });
  console.log(`written ${writeResult('messaging', result)}`);
}
