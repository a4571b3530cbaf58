import * as amqplib from 'amqplib';
import { randomUUID } from 'node:crypto';

/**
 * One process of the broker floor (see broker-floor.ts): bare amqplib, no
 * platform code. `echo <url> <name>`: a site that answers every instruction
 * on its own durable queue with a persistent answer of the answer's size,
 * acknowledging the instruction once the broker confirmed the answer (the
 * answer's header and size come in FLOOR_ANSWER_HEADER and FLOOR_ANSWER_BYTES).
 * `driver <url>`: the coordinator's part, told what to do over IPC.
 */

export const FLOOR_EXCHANGE = 'floor.instructions';
export const FLOOR_REPLIES = 'floor.answers';

export interface FloorShape {
  /** Body bytes of an instruction (the global weights) and of an answer (the update). */
  instructionBytes: number;
  answerBytes: number;
  /** Header JSON beside the body, as the platform's payload header. */
  instructionHeader: string;
  answerHeader: string;
}

/** Driver's orders: run `warmup` rounds, report 'measuring', wait for 'go', run `rounds`, report each round's start (ms). */
export interface FloorRun extends Pick<FloorShape, 'instructionBytes' | 'instructionHeader'> {
  workers: number;
  warmup: number;
  rounds: number;
}

export type FloorChildMessage = { kind: 'ready' } | { kind: 'measuring' } | { kind: 'done'; startsMs: number[] } | { kind: 'failed'; error: string };

const send = (m: FloorChildMessage) => process.send!(m);
const connect = (url: string) => amqplib.connect(url, { noDelay: true });

async function echo(url: string, name: string, answerHeader: string, answerBytes: number): Promise<void> {
  const conn = await connect(url);
  const ch = await conn.createConfirmChannel();
  await ch.prefetch(10);
  const queue = `floor.site.${name}`;
  await ch.assertQueue(queue, { durable: true });
  await ch.bindQueue(queue, FLOOR_EXCHANGE, 'fit');
  const body = Buffer.alloc(answerBytes, 7);
  const mine = answerHeader.replace('"sender":""', `"sender":"${name}"`);
  await ch.consume(queue, (m) => {
    if (!m) return;
    const round = (JSON.parse(String(m.properties.headers?.['x-fl-payload'])) as { round: number }).round;
    const reply = mine.replace('"round":0', `"round":${round}`);
    ch.publish('', FLOOR_REPLIES, body, { persistent: true, type: 'round.fit.result', messageId: randomUUID(), contentType: 'application/octet-stream', headers: { 'x-fl-payload': reply } }, (err) => {
      if (!err) ch.ack(m);
    });
  });
  send({ kind: 'ready' });
}

async function driver(url: string, run: FloorRun, go: Promise<void>): Promise<void> {
  const conn = await connect(url);
  const ch = await conn.createConfirmChannel();
  await ch.prefetch(Math.max(100, run.workers * 2));
  const body = Buffer.alloc(run.instructionBytes, 3);
  let answered = 0;
  let roundDone = (): void => undefined;
  await ch.consume(FLOOR_REPLIES, (m) => {
    if (!m) return;
    JSON.parse(String(m.properties.headers?.['x-fl-payload']));
    ch.ack(m);
    if (++answered === run.workers) roundDone();
  });
  const oneRound = async (round: number) => {
    answered = 0;
    const all = new Promise<void>((r) => (roundDone = r));
    const headers = { 'x-fl-payload': run.instructionHeader.replace('"round":0', `"round":${round}`) };
    await new Promise<void>((resolve, reject) =>
      ch.publish(FLOOR_EXCHANGE, 'fit', body, { persistent: true, type: 'round.fit', messageId: randomUUID(), contentType: 'application/octet-stream', headers }, (err) => (err ? reject(err) : resolve())),
    );
    await all;
  };
  for (let r = 1; r <= run.warmup; r++) await oneRound(r);
  send({ kind: 'measuring' });
  await go;
  const startsMs: number[] = [];
  for (let r = 1; r <= run.rounds; r++) {
    startsMs.push(performance.now());
    await oneRound(run.warmup + r);
  }
  startsMs.push(performance.now());
  send({ kind: 'done', startsMs });
  await conn.close();
}

if (require.main === module) {
  const [role, url, name] = process.argv.slice(2);
  const fail = (err: unknown) => {
    send({ kind: 'failed', error: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  };
  if (role === 'echo') echo(url, name, process.env.FLOOR_ANSWER_HEADER ?? '{}', Number(process.env.FLOOR_ANSWER_BYTES)).catch(fail);
  else if (role === 'driver') {
    let started = (): void => undefined;
    const go = new Promise<void>((r) => (started = r));
    process.on('message', (m: { kind: 'run'; run: FloorRun } | { kind: 'go' }) => {
      if (m.kind === 'run') driver(url, m.run, go).catch(fail);
      else started();
    });
    send({ kind: 'ready' });
  } else fail(new Error(`broker-floor-child: unknown role '${role}'`));
}
