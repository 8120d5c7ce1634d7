import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { orderWorkflowId } from '../src/domain';

const { EventType } = temporal.api.enums.v1;
type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** Where an order's end-to-end time goes, from a sample of workflow histories (medians, ms). */
export interface Breakdown {
  sampled: number;
  /** Pay request sent → paymentNotice signal in history: simulator, broker, consumer, signalWithStart. */
  toSignal: number;
  /** Signal → recordPaymentNotice scheduled: one workflow task (queue wait + run). */
  signalToFirstActivity: number | null;
  /** recordPaymentNotice scheduled → completed. */
  noticeActivity: number | null;
  /** recordPaymentNotice completed → markOrderPaid scheduled: a second workflow task. */
  betweenActivities: number | null;
  /** markOrderPaid scheduled → completed (the conditional UPDATE is inside). */
  paidActivity: number | null;
  /** Signal → workflow completed. */
  signalToCompleted: number;
}

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
  const activity = (name: string) => {
    const scheduled = events.find(
      (e) =>
        e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED &&
        e.activityTaskScheduledEventAttributes?.activityType?.name === name &&
        Number(e.eventId) > Number(signal.eventId),
    );
    const done = scheduled
      ? events.find(
          (e) =>
            e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED &&
            Number(e.activityTaskCompletedEventAttributes?.scheduledEventId) === Number(scheduled.eventId),
        )
      : undefined;
    return scheduled && done ? { scheduled: millis(scheduled), done: millis(done) } : null;
  };
  const notice = activity('recordPaymentNotice');
  const paid = activity('markOrderPaid');
  return {
    toSignal: millis(signal) - sentAt,
    signalToFirstActivity: notice ? notice.scheduled - millis(signal) : null,
    noticeActivity: notice ? notice.done - notice.scheduled : null,
    betweenActivities: notice && paid ? paid.scheduled - notice.done : null,
    paidActivity: paid ? paid.done - paid.scheduled : null,
    signalToCompleted: millis(completed) - millis(signal),
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
    signalToFirstActivity: pick('signalToFirstActivity'),
    noticeActivity: pick('noticeActivity'),
    betweenActivities: pick('betweenActivities'),
    paidActivity: pick('paidActivity'),
    signalToCompleted: pick('signalToCompleted') ?? 0,
  };
}
