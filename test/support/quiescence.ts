import type { WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';

const EventType = temporal.api.enums.v1.EventType;

/** Events that open work a workflow waits for, and the events that close it. */
const OPENS = new Map<number, string>([
  [EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, 'workflow task'],
  [EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, 'activity'],
  [EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED, 'child start'],
]);
const CLOSES = new Map<number, string>([
  [EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, 'workflow task'],
  [EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED, 'workflow task'],
  [EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT, 'workflow task'],
  [EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, 'activity'],
  [EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED, 'activity'],
  [EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT, 'activity'],
  [EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED, 'activity'],
  [EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED, 'child start'],
  [EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED, 'child start'],
]);
const ENDS = new Set<number>([
  EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
  EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
  EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
  EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
  EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
  EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
]);

/**
 * True when a workflow's history shows nothing in flight: it has ended, or every workflow task, activity
 * and child start it scheduled has an outcome (what is left is a timer or a condition, which only time or
 * a new signal moves). Local activities run inside a workflow task, so they count as that task.
 */
export async function isQuiescent(handle: WorkflowHandle): Promise<boolean> {
  const history = await handle.fetchHistory();
  const open = new Map<string, number>();
  for (const event of history.events ?? []) {
    const type = Number(event.eventType ?? 0);
    if (ENDS.has(type)) return true;
    const opened = OPENS.get(type);
    if (opened) open.set(opened, (open.get(opened) ?? 0) + 1);
    const closed = CLOSES.get(type);
    if (closed) open.set(closed, (open.get(closed) ?? 0) - 1);
  }
  return [...open.values()].every((n) => n <= 0);
}

/**
 * Waits until every workflow in `handles` is quiescent on two reads in a row (a completed task may
 * schedule the next one a moment later), or fails after `timeoutMs`. On the time-skipping server, time
 * does not jump while this waits, so a quiescent workflow stays so until the test moves time or signals.
 */
export async function waitQuiescent(handles: WorkflowHandle[], timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  let calm = 0;
  while (calm < 2) {
    if (Date.now() > until) {
      throw new Error(
        `workflows still busy after ${timeoutMs} ms: ${handles.map((h) => h.workflowId).join(', ')}`,
      );
    }
    const states = await Promise.all(handles.map(isQuiescent));
    calm = states.every(Boolean) ? calm + 1 : 0;
    if (calm < 2) await new Promise((resolve) => setTimeout(resolve, calm > 0 ? 15 : 10));
  }
}
