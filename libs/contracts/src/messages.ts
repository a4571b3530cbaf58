/**
 * Message names: the wire protocol's vocabulary. Producers and consumers import
 * these constants; a name never appears as a string literal elsewhere.
 */
export const Msg = {
  TaskSubmitted: 'task.submitted',
  TaskCancelRequested: 'task.cancel-requested',
  TaskStarted: 'task.started',
  TaskSucceeded: 'task.succeeded',
  TaskFailed: 'task.failed',
  TaskCancelled: 'task.cancelled',
  /** The gateway deleted tasks (DELETE /tasks): coordinators purge their records of them once none runs them. */
  TasksDeleted: 'tasks.deleted',
  RoundCompleted: 'round.completed',
  /** Several rounds' figures in one event: rounds that completed while the last round event was on its way (ROUND_EVENTS_WINDOW_MS). */
  RoundsCompleted: 'rounds.completed',
  NodeRegistered: 'node.registered',
  NodeHeartbeat: 'node.heartbeat',
  NodeLeaving: 'node.leaving',
  /** An admin revoked a site (`npm run cli -- nodes revoke`): coordinators stop using it at once. */
  NodeRevoked: 'node.revoked',
  /** A task was cancelled: workers stop its local training after the batch they are on. */
  TrainingStopRequested: 'task.stop-training',
  PresenceRequested: 'node.presence-requested',
  /** A use case stored at the gateway, for edge workers: broadcast when it is added, and sent to each site that registers without serving it. */
  UseCaseDefined: 'use-case.defined',
  ModelPackage: 'model.package',
  RoundFit: 'round.fit',
  RoundEvaluate: 'round.evaluate',
  /** Before round 1 of a task whose model takes federated statistics: each site sums its training rows per input. */
  RoundStats: 'round.stats',
  RoundStatsResult: 'round.stats-result',
  RoundFitResult: 'round.fit-result',
  RoundEvaluateResult: 'round.evaluate-result',
} as const;
export type MsgName = (typeof Msg)[keyof typeof Msg];

/**
 * Routing keys on the topic exchange. Names of nodes, coordinators and use
 * cases are single words (no dots), so each key has a fixed shape:
 *  - coordinators.all.<msg>             every coordinator (tasks, node presence)
 *  - coordinator.<id>.<msg>             one coordinator (results it asked for)
 *  - gateway.<msg>                      the gateway (task and round events)
 *  - worker.<node>.<msg>                one edge worker (model packages)
 *  - workers.<use case>.<msg>           every worker serving a use case (round broadcasts)
 *  - nodes.all.<msg>                    every edge worker (a coordinator asking who is there, a use case stored at the gateway)
 *  - control.all.<msg>                  every edge worker's control queue, read while it trains (cancel)
 */
export const Routes = {
  allCoordinators: (msg: MsgName) => `coordinators.all.${msg}`,
  coordinator: (id: string, msg: MsgName) => `coordinator.${id}.${msg}`,
  gateway: (msg: MsgName) => `gateway.${msg}`,
  worker: (node: string, msg: MsgName) => `worker.${node}.${msg}`,
  useCaseWorkers: (useCase: string, msg: MsgName) => `workers.${useCase}.${msg}`,
  allWorkers: (msg: MsgName) => `nodes.all.${msg}`,
  workerControl: (msg: MsgName) => `control.all.${msg}`,
} as const;

const useCaseWorkers = (useCase: string) => `workers.${useCase}.#`;

export const Bindings = {
  coordinator: (id: string) => ['coordinators.all.#', `coordinator.${id}.#`],
  gateway: () => ['gateway.#'],
  worker: (node: string, useCases: string[]) => [`worker.${node}.#`, 'nodes.all.#', ...useCases.map(useCaseWorkers)],
  /** The binding a worker adds when it starts serving a use case learned at run time (see Msg.UseCaseDefined). */
  useCaseWorkers,
  /** A worker's second queue, fl.worker.<node>.control: consumed beside the work queue, so a cancel is not stuck behind the training it stops. */
  workerControl: () => ['control.all.#'],
} as const;

/** A name that can stand as one word of a routing key and as a queue suffix. */
export const WORD_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
