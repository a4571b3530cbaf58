import { Msg, Routes } from '@fl/contracts';
import { InboundMessage, MessageBus, RabbitMqBus, Subscription } from '@fl/messaging';
import { Platform } from './support/platform';

interface Heard {
  name: string;
  rounds: number[];
}

/**
 * Round events behind the rounds, on real RabbitMQ and PostgreSQL: a gateway,
 * one coordinator and two edge workers training iris. A queue of the test's
 * own, bound to the gateway's round event keys, hears every round event as
 * the gateway's queue gets it.
 */
describe('round events to the gateway (ROUND_EVENTS_WINDOW_MS)', () => {
  const platform = new Platform();
  let model: { name: string; version: number };
  let bus: MessageBus;
  let listening: Subscription;
  const heard: Heard[] = [];

  beforeAll(async () => {
    // A window long against these rounds (a few tens of ms each), so that rounds go together.
    await platform.start({ sites: 2, coordinators: 1, coordinatorEnv: { WORKER_WAIT_S: '2', ROUND_EVENTS_WINDOW_MS: '1000' } });
    model = JSON.parse(await platform.cli('models', 'publish', 'iris', '--json'));
    bus = await RabbitMqBus.connect(platform.amqpUrl, { connectionName: 'round-events-listener' });
    listening = await bus.consume(
      { name: 'e2e.round-events', bindings: [Routes.gateway(Msg.RoundCompleted), Routes.gateway(Msg.RoundsCompleted)] },
      async (m: InboundMessage) => {
        const p = m.payload as { round: number; rounds?: { round: number }[]; task_id: number };
        heard.push({ name: m.name, rounds: p.rounds ? p.rounds.map((r) => r.round) : [p.round] });
      },
    );
  }, 120_000);

  afterAll(async () => {
    await listening?.cancel();
    await bus?.close();
    await platform.stop();
  }, 60_000);

  it('sends quick rounds together, every round once and in order, and the gateway stores every round', async () => {
    const rounds = 25;
    const created = await platform.fetch('POST', '/tasks', {
      user_id: '1', use_case: 'iris', model_name: model.name, model_version: model.version, num_global_iterations: rounds,
      run_name: 'round-events', experiment_name: 'Default', local_epochs: 1,
    });
    expect(created.status).toBe(200);
    const task = await platform.taskWhen(created.body.id, ['success', 'failed', 'cancelled'], 120_000);
    expect(task).toMatchObject({ status: 'success', reason: null, current_round: rounds });
    const sequence = Array.from({ length: rounds }, (_, i) => i + 1);

    // The gateway stores every round, each once (it handles its queue's events a few at a time, so the last
    // rounds' event and the task's end may be stored in either order).
    const listedRounds = async () => ((await platform.fetch('GET', `/tasks/${task.id}/rounds`)).body as { round: number }[]).map((r) => r.round);
    await platform.until('the gateway lists every round', async () => (await listedRounds()).length >= rounds, 10_000, 50);
    expect(await listedRounds()).toEqual(sequence);

    // On the wire: every round once, in order, in fewer events than rounds; a lone round as round.completed.
    await platform.until('every round event heard', async () => heard.flatMap((h) => h.rounds).length >= rounds, 10_000, 50);
    expect(heard.flatMap((h) => h.rounds)).toEqual(sequence);
    expect(heard[0]).toEqual({ name: Msg.RoundCompleted, rounds: [1] });
    for (const h of heard) expect(h.name).toBe(h.rounds.length === 1 ? Msg.RoundCompleted : Msg.RoundsCompleted);
    expect(heard.length).toBeLessThan(rounds);
    expect(Math.max(...heard.map((h) => h.rounds.length))).toBeGreaterThan(1);
    // Nothing refused on the way.
    const queues = await platform.rabbitmqctl('list_queues', '-p', platform.vhostName, 'name', 'messages');
    expect(queues.split('\n').find((l) => l.startsWith('fl.dead-letter\t')) ?? 'fl.dead-letter\t0').toBe('fl.dead-letter\t0');
  }, 150_000);
});
