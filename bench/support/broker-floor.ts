import * as amqplib from 'amqplib';
import { ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import { FLOOR_EXCHANGE, FLOOR_REPLIES, FloorChildMessage, FloorRun, FloorShape } from './broker-floor-child';
import { Cleanup } from './cleanup';
import { r2, summarize, Summary } from './stats';

/** What the broker alone costs a round: see measureBrokerFloor. */
export interface BrokerFloor {
  rounds: number;
  /** Start of one round to the start of the next, ms. */
  wallMs: Summary;
  /** CPU time per round, ms: the echoing sites (all of them), the driver, the RabbitMQ server (null when it does not run here). */
  sitesCpuMs: number;
  driverCpuMs: number;
  brokerCpuMs: number | null;
}

/** CPU time of a set of processes, ns (see the rounds bench's cpuNs). */
export type CpuOf = (pids: number[]) => number;

/**
 * The broker floor of a round: the same messages as a round of the platform
 * with N sites in separate processes, with the same guarantees (durable
 * queues, persistent messages, publisher confirms on both sides, an
 * instruction acknowledged once its answer is confirmed), exchanged by bare
 * amqplib processes that do nothing else: one persistent instruction of the
 * global weights' size fanned out to N site queues, N answers of the update's
 * size back to one queue. No database, no validation, no aggregation, no
 * checkpoint, no events. A platform round cannot be shorter than this on the
 * same machine and broker; the rounds bench prints it beside each case.
 */
export async function measureBrokerFloor(
  cleanup: Cleanup,
  url: string,
  opts: FloorShape & { workers: number; rounds: number; cpuOf: CpuOf; brokerPids: () => number[] },
): Promise<BrokerFloor> {
  const conn = await amqplib.connect(url);
  const ch = await conn.createChannel();
  await ch.assertExchange(FLOOR_EXCHANGE, 'topic', { durable: true });
  await ch.assertQueue(FLOOR_REPLIES, { durable: true });
  await conn.close();

  const entry = join(__dirname, 'broker-floor-child.js');
  const children: ChildProcess[] = [];
  const start = (args: string[], env: Record<string, string> = {}) => {
    const child = fork(entry, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    children.push(child);
    return child;
  };
  const stopAll = () => Promise.all(children.filter((c) => c.exitCode === null && c.signalCode === null).map((c) => new Promise((r) => (c.once('exit', r), c.kill('SIGKILL')))));
  cleanup.add('stopping the broker floor processes', stopAll);
  // A lost message would leave the driver waiting for good: each step has a deadline.
  const next = (child: ChildProcess, kind: FloorChildMessage['kind'], timeoutMs = 120_000) =>
    new Promise<FloorChildMessage>((resolve, reject) => {
      const onMessage = (m: FloorChildMessage) => {
        if (m.kind === 'failed') finish(() => reject(new Error(`broker floor: ${m.error}`)));
        else if (m.kind === kind) finish(() => resolve(m));
      };
      const onExit = (code: number | null) => finish(() => reject(new Error(`broker floor: a process exited (${code}) waiting for '${kind}'`)));
      const timer = setTimeout(() => finish(() => reject(new Error(`broker floor: no '${kind}' within ${timeoutMs / 1000} s`))), timeoutMs);
      const finish = (then: () => void) => {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
        then();
      };
      child.on('message', onMessage);
      child.on('exit', onExit);
    });

  const sites = Array.from({ length: opts.workers }, (_, i) => start(['echo', url, `w${i + 1}`], { FLOOR_ANSWER_HEADER: opts.answerHeader, FLOOR_ANSWER_BYTES: String(opts.answerBytes) }));
  await Promise.all(sites.map((s) => next(s, 'ready')));
  const driver = start(['driver', url]);
  await next(driver, 'ready');
  const run: FloorRun = { workers: opts.workers, warmup: 5, rounds: opts.rounds, instructionBytes: opts.instructionBytes, instructionHeader: opts.instructionHeader };
  const measuring = next(driver, 'measuring');
  driver.send({ kind: 'run', run });
  await measuring;
  const sitePids = sites.map((s) => s.pid!);
  const sample = () => ({ sites: opts.cpuOf(sitePids), driver: opts.cpuOf([driver.pid!]), broker: opts.cpuOf(opts.brokerPids()) });
  const a = sample();
  const done = next(driver, 'done', 120_000 + opts.rounds * 10_000);
  driver.send({ kind: 'go' });
  const { startsMs } = (await done) as Extract<FloorChildMessage, { kind: 'done' }>;
  const b = sample();
  await stopAll();
  const perRound = (x: number, y: number) => r2((y - x) / 1e6 / opts.rounds);
  return {
    rounds: opts.rounds,
    wallMs: summarize(startsMs.slice(1).map((t, i) => t - startsMs[i])),
    sitesCpuMs: perRound(a.sites, b.sites),
    driverCpuMs: perRound(a.driver, b.driver),
    brokerCpuMs: opts.brokerPids().length ? perRound(a.broker, b.broker) : null,
  };
}
