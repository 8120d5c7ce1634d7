import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { orderWorkflowId } from '../../src/domain';

const { EventType } = temporal.api.enums.v1;
type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/**
 * Where an order's end-to-end time goes, from a sample of workflow histories (medians, ms). The database
 * writes are local activities (workflows/order.ts), so they run inside the workflow task that handles the
 * signal: that task's run time includes markOrderPaidByNotice (the notice recorded and the order paid).
 */
export interface Breakdown {
  sampled: number;
  /** Pay request sent → paymentNotice signal in history: simulator, broker, consumer, signalWithStart. */
  toSignal: number;
  /** Signal → the workflow task that handles it started: server queue and the worker's poll. */
  signalToTask: number | null;
  /** That workflow task, started → completed: the handler and its local activities (the UPDATE is inside). */
  taskRun: number | null;
  /** Signal → workflow completed. */
  signalToCompleted: number;
  /** What one order's history holds (medians): events, workflow tasks, activity tasks (provider calls:
   * queryTrade, closeTrade) and local activities (database writes, one marker each). With
   * VERIFY_PAID_NOTICES=always the task after the signal only schedules queryTrade, so `taskRun` is that
   * task and `signalToCompleted` holds the query and the writes after it. */
  events: number | null;
  workflowTasks: number | null;
  activities: number | null;
  localActivities: number | null;
  /** Timers started (the ladder's next check; with ORDER_START_DELAY=first-step and a notice during the
   * start delay, none). */
  timers: number | null;
}

/** The marker the SDK records for each local activity (sdk-core's LOCAL_ACTIVITY_MARKER_NAME). */
const LOCAL_ACTIVITY_MARKER = 'core_local_activity';

const millis = (event: HistoryEvent) =>
  Number(event.eventTime?.seconds ?? 0) * 1000 + Math.floor((event.eventTime?.nanos ?? 0) / 1e6);

const median = (values: number[]) => {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.floor(sorted.length / 2)] ?? 0);
};

function stages(events: HistoryEvent[], sentAt: number) {
  const signal = events.find(
    (e) =>
      e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED &&
      e.workflowExecutionSignaledEventAttributes?.signalName === 'paymentNotice',
  );
  const completed = events.find((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED);
  if (!signal || !completed) return null;
  const after = (type: number, from: HistoryEvent) =>
    events.find((e) => e.eventType === type && Number(e.eventId) > Number(from.eventId));
  const count = (predicate: (e: HistoryEvent) => boolean) => events.filter(predicate).length;
  const started = after(EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED, signal);
  const taskDone = started ? after(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, started) : undefined;
  return {
    toSignal: millis(signal) - sentAt,
    signalToTask: started ? millis(started) - millis(signal) : null,
    taskRun: started && taskDone ? millis(taskDone) - millis(started) : null,
    signalToCompleted: millis(completed) - millis(signal),
    events: events.length,
    workflowTasks: count((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED),
    activities: count((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
    localActivities: count(
      (e) =>
        e.eventType === EventType.EVENT_TYPE_MARKER_RECORDED &&
        e.markerRecordedEventAttributes?.markerName === LOCAL_ACTIVITY_MARKER,
    ),
    timers: count((e) => e.eventType === EventType.EVENT_TYPE_TIMER_STARTED),
  };
}

/** Reads up to `sample` histories of orders settled by MQ (spread over the run) and returns the median stages. */
export async function breakdown(
  client: Client,
  sentAt: Map<string, number>,
  sample = 20,
): Promise<Breakdown | null> {
  const ids = [...sentAt.keys()];
  const step = Math.max(1, Math.floor(ids.length / sample));
  const picked = ids.filter((_, i) => i % step === 0).slice(0, sample);
  const rows = (
    await Promise.all(
      picked.map(async (orderId) => {
        try {
          const history = await client.workflow.getHandle(orderWorkflowId(orderId)).fetchHistory();
          return stages(history.events ?? [], sentAt.get(orderId) ?? 0);
        } catch {
          return null;
        }
      }),
    )
  ).filter((row): row is NonNullable<ReturnType<typeof stages>> => row !== null);
  if (rows.length === 0) return null;
  const pick = (key: keyof (typeof rows)[number]) =>
    median(rows.map((row) => row[key]).filter((v): v is number => v !== null));
  return {
    sampled: rows.length,
    toSignal: pick('toSignal') ?? 0,
    signalToTask: pick('signalToTask'),
    taskRun: pick('taskRun'),
    signalToCompleted: pick('signalToCompleted') ?? 0,
    events: pick('events'),
    workflowTasks: pick('workflowTasks'),
    activities: pick('activities'),
    localActivities: pick('localActivities'),
    timers: pick('timers'),
  };
}
