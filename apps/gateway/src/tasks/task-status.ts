export const TASK_STATUSES = ['pending', 'running', 'success', 'failed', 'cancelled'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** Which status a task may move to from which: nothing leaves a final state. */
const ALLOWED: Record<TaskStatus, readonly TaskStatus[]> = {
  pending: ['running', 'failed', 'cancelled'],
  running: ['success', 'failed', 'cancelled'],
  success: [],
  failed: [],
  cancelled: [],
};

export function isFinal(status: TaskStatus): boolean {
  return ALLOWED[status].length === 0;
}

export function canTransition(from: TaskStatus, to: TaskStatus): boolean {
  return ALLOWED[from].includes(to);
}

/** The statuses a task may be in for a move to `to` to be allowed. */
export function allowedSources(to: TaskStatus): TaskStatus[] {
  return TASK_STATUSES.filter((from) => canTransition(from, to));
}
