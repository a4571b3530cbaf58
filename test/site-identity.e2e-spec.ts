import * as amqp from 'amqplib';
import { Msg, Routes } from '@fl/contracts';
import { RabbitMqBus, RabbitMqManagement, siteUser } from '@fl/messaging';
import { Platform } from './support/platform';

/**
 * Sites are known by their own RabbitMQ users, not by what their messages say: every site of this
 * platform is enrolled as `npm run cli -- nodes enroll` does, with permissions that reach only its
 * own queue and the coordinators' inbound routing keys, and RabbitMQ validates the `user_id` of
 * everything it publishes. Real broker users, real permission checks, two coordinators.
 */
describe('site identity enforced by the broker', () => {
  const platform = new Platform();
  let model: { name: string; version: number };
  const user = (node: string) => siteUser(node, platform.siteUserSuffix);
  const opened: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    await platform.start({ sites: 3, coordinators: 2 });
    model = JSON.parse(await platform.cli('models', 'publish', 'iris', '--json'));
  }, 120_000);

  afterAll(async () => {
    for (const c of opened) await c.close().catch(() => undefined);
    await platform.stop();
  }, 60_000);

  /** A raw AMQP connection as a site (its own URL), with a confirm channel whose failure is reported, not thrown. */
  async function connectAs(node: string) {
    const conn = await amqp.connect(platform.siteUrls[node]);
    conn.on('error', () => undefined);
    opened.push(conn);
    const channel = async () => {
      const ch = await conn.createConfirmChannel();
      ch.on('error', () => undefined);
      return ch;
    };
    return { conn, channel };
  }

  const refusal = (p: Promise<unknown>) => p.then(() => 'allowed', (err: Error) => err.message);

  function publishConfirmed(ch: amqp.ConfirmChannel, routingKey: string, content: Buffer, options: amqp.Options.Publish): Promise<string> {
    return new Promise((resolve) => {
      const closed = (err: Error) => resolve(err.message);
      ch.once('close', () => resolve('channel closed'));
      ch.once('error', closed);
      ch.publish('fl.events', routingKey, content, options, (err) => (err ? resolve(`nacked: ${err.message}`) : resolve('confirmed')));
    });
  }

  const presence = (sender: string, useCases = ['iris']) => ({
    task_id: 0, round: 0, sender, use_cases: useCases, examples: { iris: { train: 40, test: 10 } }, version: 'forged',
  });

  async function auditRows(action: string, target?: string) {
    return platform.query<{ actor: string; via: string; target_id: string; details: Record<string, unknown> }>(
      `SELECT actor, via, target_id, details FROM gateway.audit_events WHERE action = $1 AND ($2::text IS NULL OR target_id = $2) ORDER BY id`,
      [action, target ?? null],
    );
  }

  async function submit(rounds: number, minFit: number, runName: string): Promise<number> {
    const created = await platform.fetch('POST', '/tasks', {
      user_id: 'e2e-admin', use_case: 'iris', model_name: model.name, model_version: model.version, num_global_iterations: rounds,
      run_name: runName, experiment_name: 'Default', min_fit_clients: minFit,
    });
    expect(created.status).toBe(200);
    return created.body.id;
  }

  it('connects every site as its own broker user, and audits each one joining once', async () => {
    // The management API lists connections from statistics it gathers every few seconds: poll it.
    const mgmt = platform.managementUrl.replace(/\/\/[^@]*@/, '//');
    const users = async () => {
      const res = await fetch(`${mgmt}/api/connections`, { headers: { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}` } });
      return ((await res.json()) as { user: string; vhost: string }[]).filter((c) => c.vhost === platform.vhostName).map((c) => c.user);
    };
    const sites = ['site-1', 'site-2', 'site-3'].map(user);
    await platform.until('the broker lists a connection of each site user', async () => {
      const seen = await users();
      return sites.every((u) => seen.includes(u));
    });

    const enrolled = await auditRows('site.enrolled');
    expect(enrolled.map((r) => r.target_id).sort()).toEqual(['site-1', 'site-2', 'site-3']);
    expect(enrolled[0].via).toBe('cli');
    expect(enrolled[0].details).toMatchObject({ broker_user: user('site-1'), vhost: platform.vhostName, method: 'management-api' });
    // Two coordinators heard each registration; the site joined once.
    const joined = await auditRows('site.joined');
    expect(joined.map((r) => r.target_id).sort()).toEqual(['site-1', 'site-2', 'site-3']);
    expect(joined.find((r) => r.target_id === 'site-2')).toMatchObject({ actor: 'site-2', via: 'broker', details: { broker_user: user('site-2') } });
  });

  it('lets the broker refuse a site that publishes as another site', async () => {
    const { channel } = await connectAs('site-1');
    const outcome = await publishConfirmed(await channel(), Routes.allCoordinators(Msg.NodeHeartbeat), Buffer.from(JSON.stringify(presence('site-2'))), {
      type: Msg.NodeHeartbeat, contentType: 'application/json', messageId: 'forged-user-id', persistent: true, userId: user('site-2'),
    });
    expect(outcome).toMatch(/PRECONDITION_FAILED - user_id property set to '.*site-2.*' but authenticated user was '.*site-1.*'/);
  });

  it("keeps a site away from other sites' queues and from traffic it has no business with", async () => {
    const { channel } = await connectAs('site-1');
    expect(await refusal((await channel()).consume('fl.worker.site-2', () => undefined))).toMatch(/ACCESS_REFUSED - access to queue 'fl.worker.site-2'/);
    expect(await refusal((await channel()).bindQueue('fl.worker.site-1', 'fl.events', 'worker.site-2.#'))).toMatch(/ACCESS_REFUSED - access to topic 'worker.site-2.#'/);
    expect(await refusal((await channel()).bindQueue('fl.worker.site-1', 'fl.events', 'coordinator.#'))).toMatch(/ACCESS_REFUSED/);
    expect(await refusal((await channel()).assertQueue('spy', { exclusive: true }))).toMatch(/ACCESS_REFUSED - access to queue 'spy'/);
    expect(await refusal((await channel()).deleteExchange('fl.events'))).toMatch(/ACCESS_REFUSED/);
    // Publishing a task (only the gateway does) or a task event to the gateway is refused outright.
    for (const key of [Routes.allCoordinators(Msg.TaskSubmitted), Routes.gateway(Msg.TaskSucceeded), Routes.allCoordinators(Msg.NodeRevoked)]) {
      const outcome = await publishConfirmed(await channel(), key, Buffer.from('{}'), { userId: user('site-1'), type: 'x', messageId: 'x' });
      expect(outcome).toContain(`ACCESS_REFUSED - access to topic '${key}' in exchange 'fl.events'`);
    }
  });

  it('rejects, dead-letters and audits a message whose payload claims another site, changing nothing', async () => {
    const bus = await RabbitMqBus.connect(platform.siteUrls['site-1'], { userId: user('site-1'), topology: 'check', connectionName: 'forger' });
    opened.push(bus);
    const before = await platform.query<{ use_cases: string[]; info: unknown }>(`SELECT use_cases, info FROM coordinator.nodes WHERE name = 'site-2'`);
    await bus.publish(Routes.allCoordinators(Msg.NodeHeartbeat), { name: Msg.NodeHeartbeat, payload: presence('site-2', ['forged']) });
    await bus.publish(Routes.coordinator('e2e-coordinator-1', Msg.RoundFitResult), {
      name: Msg.RoundFitResult,
      payload: { task_id: 1, round: 1, sender: 'site-2', status: 'ok', examples: 40, train_loss: 0.1, duration_ms: 1 },
      attachment: Buffer.from('not weights'),
    });
    await platform.until('both forgeries are audited', async () => (await auditRows('site.rejected', 'site-2')).length === 2);
    const rejected = await auditRows('site.rejected', 'site-2');
    // The heartbeat reached both coordinators; the audit log has it once.
    expect(rejected.map((r) => r.details.message).sort()).toEqual([Msg.RoundFitResult, Msg.NodeHeartbeat].sort());
    for (const r of rejected) {
      expect(r.actor).toBe(user('site-1'));
      expect(r.details.reason).toContain(`published by broker user '${user('site-1')}', not by '${user('site-2')}'`);
    }
    expect(await platform.query(`SELECT use_cases, info FROM coordinator.nodes WHERE name = 'site-2'`)).toEqual(before);
    // Dead-lettered, not dropped: the heartbeat once per coordinator queue, the result once.
    await platform.until('the forgeries are in the dead-letter queue', async () => {
      const queues = await platform.rabbitmqctl('list_queues', '-p', platform.vhostName, 'name', 'messages');
      return /^fl\.dead-letter\s+3$/m.test(queues);
    });
  });

  it('ignores a replayed update from an earlier round; each round is aggregated once with each site once', async () => {
    // An administrator's spy queue records the sites' real results, to replay one of them later.
    const admin = await amqp.connect(platform.amqpUrl);
    opened.push(admin);
    const spy = await admin.createChannel();
    const { queue } = await spy.assertQueue('', { exclusive: true });
    await spy.bindQueue(queue, 'fl.events', 'coordinator.*.round.fit-result');

    const id = await submit(4, 3, 'replay');
    await platform.until(`task ${id} has finished round 2`, async () => (await platform.fetch('GET', `/tasks/${id}`)).body.current_round >= 2);
    let captured: amqp.GetMessage | false = false;
    for (;;) {
      const m = await spy.get(queue, { noAck: true });
      if (!m) break;
      const p = JSON.parse(String(m.properties.headers?.['x-fl-payload']));
      if (p.task_id === id && p.round === 1 && p.sender === 'site-1') captured = m;
    }
    expect(captured).not.toBe(false);
    const original = captured as amqp.GetMessage;
    // The same bytes, the same message id, from the right site's own connection: a perfect replay.
    const { channel } = await connectAs('site-1');
    expect(await publishConfirmed(await channel(), original.fields.routingKey, original.content, original.properties as amqp.Options.Publish)).toBe('confirmed');

    expect((await platform.taskWhen(id)).status).toBe('success');
    const logs = ['coordinator-1', 'coordinator-2'].flatMap((c) => platform.jsonLogLines(c)).map((l) => String(l.msg));
    expect(logs).toContainEqual(expect.stringMatching(new RegExp(`^task ${id} round 1 fit: answer from site-1 ignored \\((closed|duplicate)\\)$`)));
    const rounds = await platform.query<{ round: number; participants: number }>(`SELECT round, participants FROM coordinator.rounds WHERE task_id = $1 ORDER BY round`, [id]);
    expect(rounds).toEqual([1, 2, 3, 4].map((round) => ({ round, participants: 3 })));
    const received = await platform.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM coordinator.round_participants WHERE task_id = $1 AND phase = 'fit' AND status = 'received'`,
      [id],
    );
    expect(received[0].n).toBe(12);
  });

  it('enrols through printed rabbitmqctl commands when the management API is not configured, and revokes the same way', async () => {
    const enrolment = JSON.parse(await platform.cli('nodes', 'enroll', 'site-9', '--json'));
    expect(enrolment).toMatchObject({ node: 'site-9', user: user('site-9'), vhost: platform.vhostName, applied: false });
    expect(enrolment.commands.map((c: string[]) => c.slice(0, 2))).toEqual([
      ['rabbitmqctl', 'add_user'], ['rabbitmqctl', 'set_permissions'], ['rabbitmqctl', 'set_topic_permissions'],
    ]);
    try {
      for (const [, ...args] of enrolment.commands) await platform.rabbitmqctl(...args);
      const bus = await RabbitMqBus.connect(enrolment.env.AMQP_URL, { userId: user('site-9'), topology: 'check', connectionName: 'site-9' });
      await bus.close();
      expect((await platform.fetch('GET', '/nodes')).body.find((n: { name: string }) => n.name === 'site-9')).toMatchObject({ status: 'enrolled' });

      const text = await platform.cli('nodes', 'revoke', 'site-9');
      expect(text).toContain(`'rabbitmqctl' 'delete_user' '${user('site-9')}'`);
      const revocation = JSON.parse(await platform.cli('nodes', 'revoke', 'site-9', '--json'));
      for (const [, ...args] of revocation.commands) await platform.rabbitmqctl(...args);
      expect(await refusal(amqp.connect(enrolment.env.AMQP_URL))).toMatch(/ACCESS_REFUSED|PLAIN login refused/);
    } finally {
      await new RabbitMqManagement(platform.managementUrl).revoke(user('site-9'));
    }
  });

  it('revokes a site: it can no longer connect, the gateway shows it revoked, and no task uses it', async () => {
    const out = await platform.cliWith({ RABBITMQ_MANAGEMENT_URL: platform.managementUrl }, 'nodes', 'revoke', 'site-3');
    expect(out).toContain(`broker user '${user('site-3')}' deleted through the management API`);

    expect(await refusal(amqp.connect(platform.siteUrls['site-3']))).toMatch(/ACCESS_REFUSED|PLAIN login refused/);
    const nodes = (await platform.fetch('GET', '/nodes')).body as { name: string; status: string; revoked_at: string | null }[];
    expect(nodes.find((n) => n.name === 'site-3')).toMatchObject({ status: 'revoked', revoked_at: expect.any(String) });
    expect(nodes.filter((n) => n.status === 'online').map((n) => n.name)).toEqual(['site-1', 'site-2']);
    const revoked = await auditRows('site.revoked', 'site-3');
    expect(revoked).toHaveLength(1);
    expect(revoked[0]).toMatchObject({ via: 'cli', details: { broker_user: user('site-3'), method: 'management-api' } });

    const id = await submit(2, 2, 'after-revoke');
    expect((await platform.taskWhen(id)).status).toBe('success');
    const chosen = await platform.query<{ node_name: string }>(
      `SELECT DISTINCT node_name FROM coordinator.round_participants WHERE task_id = $1 ORDER BY node_name`,
      [id],
    );
    expect(chosen.map((r) => r.node_name)).toEqual(['site-1', 'site-2']);
    // The revoked worker's process is still running, locked out: it says why it cannot reconnect.
    await platform.until('site-3 logs that the broker refuses it', async () =>
      platform.jsonLogLines('site-3').some((l) => /cannot reconnect to .*(ACCESS_REFUSED|PLAIN login refused)/.test(String(l.msg))),
    );
  });
});
