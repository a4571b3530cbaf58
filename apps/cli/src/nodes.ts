import { randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import { Msg, Routes, WORD_PATTERN } from '@fl/contracts';
import {
  RabbitMqBus,
  RabbitMqManagement,
  rabbitmqctlEnrolCommands,
  rabbitmqctlRevokeCommands,
  siteAmqpUrl,
  siteGrant,
  vhostOf,
} from '@fl/messaging';
import { Queryable, recordAudit } from '@fl/persistence';
import { brokerOptions } from '@fl/runtime';
import { CliConfig } from './config';

export interface EnrolResult {
  node: string;
  user: string;
  vhost: string;
  /** true: the management API created the user; false: `commands` must be run on the broker host. */
  applied: boolean;
  commands: string[][];
  /** What the site's edge worker needs besides DATA_PATH (AMQP_URL holds its password: shown once). */
  env: { NODE_NAME: string; AMQP_URL: string };
}

export interface RevokeResult {
  node: string;
  user: string;
  /** true: the management API deleted the user (and RabbitMQ closed its connections). */
  applied: boolean;
  commands: string[][];
}

function checkName(node: string | undefined): string {
  if (!node || !WORD_PATTERN.test(node)) throw new Error(`site name must be 1-64 letters, digits, _ or -, got '${node ?? ''}'`);
  return node;
}

const actor = () => `cli:${userInfo().username}`;

/**
 * Gives a site its own broker user, reaching only its queue and the coordinators' inbound routing
 * keys (see siteGrant), records it as enrolled and audits it. Enrolling again issues a new password.
 */
export async function enrolSite(config: CliConfig, db: Queryable, name: string | undefined): Promise<EnrolResult> {
  const node = checkName(name);
  const amqpUrl = requireAmqpUrl(config, 'nodes enroll');
  const grant = siteGrant(node, { vhost: vhostOf(amqpUrl), suffix: config.SITE_USER_SUFFIX });
  // Hex: never starts with '-', which rabbitmqctl would read as an option.
  const password = randomBytes(24).toString('hex');
  const commands = rabbitmqctlEnrolCommands(grant, password);
  const applied = !!config.RABBITMQ_MANAGEMENT_URL;
  if (applied) await new RabbitMqManagement(config.RABBITMQ_MANAGEMENT_URL!).enrol(grant, password);
  await db.query(
    `INSERT INTO coordinator.nodes (name, use_cases, status, enrolled_at) VALUES ($1, '{}', 'enrolled', now())
     ON CONFLICT (name) DO UPDATE SET enrolled_at = now(), revoked_at = NULL,
       status = CASE WHEN coordinator.nodes.status = 'revoked' THEN 'enrolled' ELSE coordinator.nodes.status END`,
    [node],
  );
  await recordAudit(db, {
    actor: actor(),
    via: 'cli',
    action: 'site.enrolled',
    targetType: 'node',
    targetId: node,
    details: { broker_user: grant.user, vhost: grant.vhost, method: applied ? 'management-api' : 'rabbitmqctl' },
  });
  return {
    node,
    user: grant.user,
    vhost: grant.vhost,
    applied,
    commands: applied ? [] : commands,
    env: { NODE_NAME: node, AMQP_URL: siteAmqpUrl(amqpUrl, grant.user, password) },
  };
}

/**
 * Removes the site's broker user (it can no longer connect; RabbitMQ closes its open connections),
 * marks it revoked and tells the coordinators, which stop waiting for it and never choose it again.
 */
export async function revokeSite(config: CliConfig, db: Queryable, name: string | undefined): Promise<RevokeResult> {
  const node = checkName(name);
  const amqpUrl = requireAmqpUrl(config, 'nodes revoke');
  const grant = siteGrant(node, { vhost: vhostOf(amqpUrl), suffix: config.SITE_USER_SUFFIX });
  const applied = !!config.RABBITMQ_MANAGEMENT_URL;
  let existed: boolean | undefined;
  if (applied) existed = await new RabbitMqManagement(config.RABBITMQ_MANAGEMENT_URL!).revoke(grant.user);
  await db.query(
    `INSERT INTO coordinator.nodes (name, use_cases, status, revoked_at) VALUES ($1, '{}', 'revoked', now())
     ON CONFLICT (name) DO UPDATE SET status = 'revoked', revoked_at = now()`,
    [node],
  );
  await recordAudit(db, {
    actor: actor(),
    via: 'cli',
    action: 'site.revoked',
    targetType: 'node',
    targetId: node,
    details: { broker_user: grant.user, vhost: grant.vhost, method: applied ? 'management-api' : 'rabbitmqctl', ...(existed === false ? { broker_user_existed: false } : {}) },
  });
  const bus = await RabbitMqBus.connect(amqpUrl, brokerOptions(config, 'fl-cli'));
  try {
    await bus.publish(Routes.allCoordinators(Msg.NodeRevoked), { name: Msg.NodeRevoked, payload: { task_id: 0, round: 0, sender: 'cli', node } });
  } finally {
    await bus.close();
  }
  return { node, user: grant.user, applied, commands: applied ? [] : rabbitmqctlRevokeCommands(grant.user) };
}

function requireAmqpUrl(config: CliConfig, command: string): string {
  if (!config.AMQP_URL) throw new Error(`${command} needs AMQP_URL: the broker (and vhost) the site will connect to, with an administrator's credentials`);
  return config.AMQP_URL;
}
