import { Msg, Routes, TASKS_DELETED_MAX_IDS } from '@fl/contracts';
import { MessageBus, OutboundMessage } from '@fl/messaging';
import { ModelRegistry } from '@fl/registry';
import { TaskDto } from './dto/task.dto';
import { TasksRepository } from './tasks.repository';
import { TasksService } from './tasks.service';
import { TaskStatus } from './task-status';

/** The gateway's task table and deletion outbox, in memory: what TasksService asks of TasksRepository here. */
class TaskTable {
  readonly rows = new Map<number, TaskDto>();
  readonly outbox = new Set<number>();

  add(id: number, status: TaskStatus): void {
    this.rows.set(id, { id, status, cancel_requested_at: null } as TaskDto);
  }
  async list(): Promise<TaskDto[]> {
    return [...this.rows.values()];
  }
  async find(id: number): Promise<TaskDto | null> {
    return this.rows.get(id) ?? null;
  }
  async markCancelRequested(id: number): Promise<void> {
    this.rows.get(id)!.cancel_requested_at = 'now';
  }
  async transition(id: number, to: TaskStatus): Promise<TaskDto | null> {
    this.rows.get(id)!.status = to;
    return this.rows.get(id)!;
  }
  async remove(ids: number[]): Promise<number[]> {
    const gone = ids.filter((id) => this.rows.delete(id));
    gone.forEach((id) => this.outbox.add(id));
    return gone;
  }
  async untoldDeletions(limit: number): Promise<number[]> {
    return [...this.outbox].sort((a, b) => a - b).slice(0, limit);
  }
  async deletionsTold(ids: number[]): Promise<void> {
    ids.forEach((id) => this.outbox.delete(id));
  }
}

/** A broker that confirms at once, or holds every publish until it is back (`away`), or refuses them. */
class Broker {
  readonly published: { key: string; msg: OutboundMessage }[] = [];
  away = false;
  refuse = false;
  private held: (() => void)[] = [];

  publish = async (key: string, msg: OutboundMessage): Promise<void> => {
    if (this.refuse) throw new Error('channel closed');
    if (this.away) await new Promise<void>((confirm) => this.held.push(confirm));
    this.published.push({ key, msg });
  };

  back(): void {
    this.away = false;
    this.held.splice(0).forEach((confirm) => confirm());
  }

  /** The task ids of each tasks.deleted message, in order. */
  deletions(): number[][] {
    return this.published.filter((p) => p.msg.name === Msg.TasksDeleted).map((p) => (p.msg.payload as { task_ids: number[] }).task_ids);
  }
}

describe('TasksService: deleting all tasks', () => {
  let table: TaskTable;
  let broker: Broker;
  let sut: TasksService;

  beforeEach(() => {
    table = new TaskTable();
    broker = new Broker();
    sut = new TasksService(table as unknown as TasksRepository, { publish: broker.publish } as unknown as MessageBus, {} as ModelRegistry);
  });

  afterEach(() => jest.useRealTimers());

  it('cancels the active tasks, deletes every row, then tells every coordinator which tasks to purge', async () => {
    table.add(1, 'success');
    table.add(2, 'running');
    table.add(3, 'pending');
    table.add(4, 'failed');
    expect(await sut.deleteAll()).toEqual({ message: 'All tasks deleted', deleted: 4, cancelled: 2 });
    expect(table.rows.size).toBe(0);
    expect(broker.published.map((p) => [p.key, p.msg.name])).toEqual([
      [Routes.allCoordinators(Msg.TaskCancelRequested), Msg.TaskCancelRequested],
      [Routes.allCoordinators(Msg.TaskCancelRequested), Msg.TaskCancelRequested],
      [Routes.allCoordinators(Msg.TasksDeleted), Msg.TasksDeleted],
    ]);
    expect(broker.published[2].msg.payload).toEqual({ task_id: 0, round: 0, sender: 'gateway', task_ids: [1, 2, 3, 4] });
    expect(table.outbox.size).toBe(0);
  });

  it(`sends at most ${TASKS_DELETED_MAX_IDS} ids a message, each id once`, async () => {
    const ids = Array.from({ length: 2 * TASKS_DELETED_MAX_IDS + 5 }, (_, i) => i + 1);
    ids.forEach((id) => table.add(id, 'success'));
    await sut.deleteAll();
    expect(broker.deletions().map((batch) => batch.length)).toEqual([TASKS_DELETED_MAX_IDS, TASKS_DELETED_MAX_IDS, 5]);
    expect(broker.deletions().flat()).toEqual(ids);
  });

  it('answers without waiting for a broker that is away, and tells the coordinators once it is back', async () => {
    jest.useFakeTimers();
    table.add(1, 'success');
    table.add(2, 'running');
    broker.away = true;
    const answer = sut.deleteAll();
    // The cancel's wait, then the deletion's: neither outlasts the gateway's bound on the broker.
    await jest.advanceTimersByTimeAsync(10_000);
    expect(await answer).toEqual({ message: 'All tasks deleted', deleted: 2, cancelled: 1 });
    expect(table.rows.size).toBe(0);
    expect([...table.outbox]).toEqual([1, 2]);
    // Asked again meanwhile (the periodic pass): joins the pass in flight, which runs once more after it.
    const periodic = sut.tellCoordinatorsOfDeletions();
    broker.back();
    await periodic;
    expect(broker.deletions()).toEqual([[1, 2]]);
    expect(table.outbox.size).toBe(0);
  });

  it('keeps the deletions a broker refused for the next pass (a gateway restarted before the broker came back has them too)', async () => {
    table.add(5, 'cancelled');
    broker.refuse = true;
    await sut.deleteAll();
    expect([...table.outbox]).toEqual([5]);
    broker.refuse = false;
    await sut.tellCoordinatorsOfDeletions();
    expect(broker.deletions()).toEqual([[5]]);
    expect(table.outbox.size).toBe(0);
    // Nothing left: a pass sends nothing.
    await sut.tellCoordinatorsOfDeletions();
    expect(broker.deletions()).toHaveLength(1);
  });
});
