import { Bindings, Msg, Routes } from './messages';
import { FitResultPayload, RoundInstructionPayload, StatsRequestPayload, TASKS_DELETED_MAX_IDS, TasksDeletedPayload, TaskSubmittedPayload, UseCaseDefinedPayload } from './payloads';
import { parsePayload, ContractViolation } from './validate';

describe('contracts', () => {
  it('validates a task submission with nested settings', () => {
    const ok = parsePayload(TaskSubmittedPayload, {
      task_id: 3, round: 0, sender: 'gateway',
      spec: {
        task_id: 3, user_id: '1', use_case: 'iris', model_name: 'iris', model_version: 1,
        num_global_iterations: 3, run_name: 'r', experiment_name: 'Default',
        settings: { strategy: 'fedavg', min_fit_clients: 1, fraction_fit: 1, local_epochs: 1, batch_size: 8, learning_rate: 0.1, round_timeout_s: 5, seed: 1 },
      },
    });
    expect(ok.spec.settings.batch_size).toBe(8);
    expect(() => parsePayload(TaskSubmittedPayload, { task_id: 3, round: 0, sender: 'gateway', spec: { task_id: 'x' } })).toThrow(ContractViolation);
  });

  it('names each bad field', () => {
    try {
      parsePayload(FitResultPayload, { task_id: -1, round: 1, sender: 'a.b', status: 'ok', examples: 1, train_loss: 'x', duration_ms: 1 });
      throw new Error('not rejected');
    } catch (e) {
      expect(e).toBeInstanceOf(ContractViolation);
      const msg = (e as Error).message;
      expect(msg).toContain('task_id');
      expect(msg).toContain('sender');
      expect(msg).toContain('train_loss');
    }
  });

  it("carries what a strategy asks of the workers in the fit config, and a worker's loss_before_fit, checked", () => {
    const instruction = (config: Record<string, unknown>) => ({
      task_id: 1, round: 1, sender: 'c', use_case: 'iris', participants: ['site-1'],
      package_sha256: 'a'.repeat(64), weights_sha256: 'b'.repeat(64), reply_to: 'coordinator.c.round.fit-result',
      config: { local_epochs: 1, batch_size: 8, learning_rate: 0.3, seed: 1, ...config },
    });
    expect(parsePayload(RoundInstructionPayload, instruction({ proximal_mu: 0.1, report_loss_before_fit: true })).config).toMatchObject({ proximal_mu: 0.1, report_loss_before_fit: true });
    expect(() => parsePayload(RoundInstructionPayload, instruction({ proximal_mu: -1 }))).toThrow('proximal_mu');
    expect(() => parsePayload(RoundInstructionPayload, instruction({ report_loss_before_fit: 'yes' }))).toThrow('report_loss_before_fit');
    const result = { task_id: 1, round: 1, sender: 'site-1', status: 'ok', examples: 40, train_loss: 0.2, duration_ms: 5 };
    expect(parsePayload(FitResultPayload, { ...result, loss_before_fit: 0.9 }).loss_before_fit).toBe(0.9);
    expect(() => parsePayload(FitResultPayload, { ...result, loss_before_fit: 'high' })).toThrow('loss_before_fit');
  });

  it('refuses node names that would break routing keys', () => {
    expect(() =>
      parsePayload(RoundInstructionPayload, {
        task_id: 1, round: 1, sender: 'c', use_case: 'iris', participants: ['ok', 'bad.name'],
        package_sha256: 'a'.repeat(64), weights_sha256: 'b'.repeat(64), reply_to: 'coordinator.c.round.fit-result',
      }),
    ).toThrow('participants[1] ("bad.name") must match');
    const base = { task_id: 1, round: 1, sender: 'c', use_case: 'iris', package_sha256: 'a'.repeat(64), weights_sha256: 'b'.repeat(64), reply_to: 'coordinator.c.round.fit-result' };
    expect(() => parsePayload(RoundInstructionPayload, { ...base, participants: 'site-1' })).toThrow('participants must be an array of names');
    expect(() => parsePayload(RoundInstructionPayload, { ...base, participants: ['site-1', 7] })).toThrow('participants[1] (7) must match');
    expect(() => parsePayload(StatsRequestPayload, { ...base, features: 4, participants: [''] })).toThrow('participants[0] ("") must match');
    expect(parsePayload(RoundInstructionPayload, { ...base, participants: ['site-1', 'site_2'] }).participants).toEqual(['site-1', 'site_2']);
  });

  it('routes each audience to its own bindings', () => {
    expect(Routes.worker('site-1', Msg.ModelPackage)).toBe('worker.site-1.model.package');
    expect(Bindings.worker('site-1', ['iris'])).toEqual(['worker.site-1.#', 'nodes.all.#', 'workers.iris.#']);
    expect(Routes.coordinator('c1', Msg.RoundFitResult)).toBe('coordinator.c1.round.fit-result');
    expect(Routes.allWorkers(Msg.UseCaseDefined)).toBe('nodes.all.use-case.defined');
    expect(Bindings.useCaseWorkers('flowers')).toBe('workers.flowers.#');
  });

  it('carries a use case definition as it is, nested objects and arrays included', () => {
    const definition = { name: 'flowers', features: [{ name: 'a', type: 'categorical', values: ['x', 'y'] }], label: { column: 'c', classes: ['p', 'q'] } };
    const p = parsePayload(UseCaseDefinedPayload, { task_id: 0, round: 0, sender: 'gateway', definition });
    expect(p.definition).toEqual(definition);
    expect(() => parsePayload(UseCaseDefinedPayload, { task_id: 0, round: 0, sender: 'gateway', definition: 'flowers' })).toThrow('definition');
  });

  it('carries the ids of deleted tasks to every coordinator, each a PostgreSQL integer, at most TASKS_DELETED_MAX_IDS of them', () => {
    expect(Routes.allCoordinators(Msg.TasksDeleted)).toBe('coordinators.all.tasks.deleted');
    expect(Bindings.coordinator('c1')).toContain('coordinators.all.#');
    const deleted = (task_ids: unknown) => ({ task_id: 0, round: 0, sender: 'gateway', task_ids });
    expect(parsePayload(TasksDeletedPayload, deleted([3, 1, 2147483647])).task_ids).toEqual([3, 1, 2147483647]);
    expect(parsePayload(TasksDeletedPayload, deleted(Array.from({ length: TASKS_DELETED_MAX_IDS }, (_, i) => i + 1))).task_ids).toHaveLength(TASKS_DELETED_MAX_IDS);
    for (const bad of [[], [0], [-1], [1.5], ['1'], [2147483648], null, 7, Array.from({ length: TASKS_DELETED_MAX_IDS + 1 }, (_, i) => i + 1)]) {
      expect(() => parsePayload(TasksDeletedPayload, deleted(bad))).toThrow('task_ids');
    }
    expect(() => parsePayload(TasksDeletedPayload, { task_id: 0, round: 0, sender: 'a.b', task_ids: [1] })).toThrow('sender');
  });
});
