import type * as proto from '@temporalio/proto';

type History = proto.temporal.api.history.v1.IHistory;
type Payload = proto.temporal.api.common.v1.IPayload;

/** Marker name SDK core records for a local activity's outcome. */
const LOCAL_ACTIVITY_MARKER = 'core_local_activity';

/** One activity a workflow history ran: regular (ActivityTaskScheduled) or local (its marker). */
export interface ActivityRun {
  type: string;
  local: boolean;
  /** The completed activity's result payload; null while it runs or when it failed. */
  result: Payload | null;
}

/**
 * Every activity a history ran, in order, whichever way workflows/order.ts ran it: the database writes
 * are local activities, the provider calls regular ones.
 */
export function activityRuns(history: History): ActivityRun[] {
  const runs: ActivityRun[] = [];
  const byScheduledId = new Map<string, ActivityRun>();
  for (const event of history.events ?? []) {
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled) {
      const run = { type: scheduled.activityType?.name ?? '', local: false, result: null };
      byScheduledId.set(String(event.eventId), run);
      runs.push(run);
    }
    const completed = event.activityTaskCompletedEventAttributes;
    if (completed) {
      const run = byScheduledId.get(String(completed.scheduledEventId));
      if (run) run.result = completed.result?.payloads?.[0] ?? null;
    }
    const marker = event.markerRecordedEventAttributes;
    if (marker?.markerName === LOCAL_ACTIVITY_MARKER) {
      const data = marker.details?.data?.payloads?.[0]?.data;
      if (!data) continue;
      const { activity_type: type } = JSON.parse(Buffer.from(data).toString('utf8')) as {
        activity_type?: string;
      };
      runs.push({ type: type ?? '', local: true, result: marker.details?.result?.payloads?.[0] ?? null });
    }
  }
  return runs;
}

/** The activity types a history ran, in order (see activityRuns). */
export function activityTypes(history: History): string[] {
  return activityRuns(history).map((run) => run.type);
}
