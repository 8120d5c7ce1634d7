import {
  type Client,
  ScheduleAlreadyRunning,
  ScheduleOverlapPolicy,
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
} from '@temporalio/client';
import {
  type ReconciliationInput,
  reconciliationWorkflow,
  reconciliationWorkflowId,
  type ScheduledReconciliationInput,
  scheduledReconciliationWorkflow,
} from '../../workflows/reconciliation';
import { ReconDateKey, ReconStatusKey } from '../../workflows/search-attributes';
import type { Config } from '../platform/config';
import { billDayBounds, isBillDate, STATEMENT_TIME_ZONE, shiftBillDate } from '../provider/statement-format';

/**
 * Starting the daily reconciliation: one run of a day (`payrecon recon run`), the Temporal Schedule
 * that starts it every day (created or brought up to date idempotently), and backfills through it.
 */

export type ReconConfig = Pick<
  Config,
  | 'RECON_PROVIDER'
  | 'RECON_SCHEDULE_AT'
  | 'RECON_CATCHUP_WINDOW'
  | 'RECON_MIDNIGHT_EDGE'
  | 'RECON_HEAL_WAIT'
  | 'TEMPORAL_TASK_QUEUE'
>;

export function reconciliationScheduleId(provider: string): string {
  return `reconciliation-${provider}`;
}

export function reconciliationInput(
  config: ReconConfig,
  billDate: string,
  dryRun = false,
): ReconciliationInput {
  if (!isBillDate(billDate)) throw new RangeError(`not a date (YYYY-MM-DD): ${billDate}`);
  return {
    provider: config.RECON_PROVIDER,
    billDate,
    midnightEdgeMs: config.RECON_MIDNIGHT_EDGE,
    healWaitMs: config.RECON_HEAL_WAIT,
    ...(dryRun ? { dryRun: true } : {}),
  };
}

/**
 * Starts the day's run, or joins the one running (USE_EXISTING): asking twice runs it once. Once it has
 * ended the same id may run again (a re-run finds the same breaks). A dry run has an id of its own.
 */
export async function startReconciliation(
  client: Client,
  config: ReconConfig,
  billDate: string,
  options: { dryRun?: boolean } = {},
) {
  const input = reconciliationInput(config, billDate, options.dryRun);
  const id = reconciliationWorkflowId(input.provider, billDate);
  return client.workflow.start(reconciliationWorkflow, {
    workflowId: options.dryRun ? `${id}-dry-run-${Date.now()}` : id,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    args: [input],
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    typedSearchAttributes: [
      { key: ReconDateKey, value: billDate },
      { key: ReconStatusKey, value: 'FETCHING' },
    ],
    staticSummary: `reconciliation of ${billDate} (${input.provider})${options.dryRun ? ', dry run' : ''}`,
  });
}

function scheduleOptions(config: ReconConfig) {
  const [hour, minute] = config.RECON_SCHEDULE_AT.split(':').map(Number) as [number, number];
  const input: ScheduledReconciliationInput = {
    provider: config.RECON_PROVIDER,
    midnightEdgeMs: config.RECON_MIDNIGHT_EDGE,
    healWaitMs: config.RECON_HEAL_WAIT,
  };
  return {
    scheduleId: reconciliationScheduleId(config.RECON_PROVIDER),
    spec: { calendars: [{ hour, minute }], timezone: STATEMENT_TIME_ZONE },
    action: {
      type: 'startWorkflow' as const,
      workflowType: scheduledReconciliationWorkflow,
      workflowId: `reconciliation-${config.RECON_PROVIDER}-scheduled`,
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      args: [input] as [ScheduledReconciliationInput],
    },
    policies: {
      // A day still running (a slow statement) holds the next one back instead of racing it.
      overlap: ScheduleOverlapPolicy.BUFFER_ONE,
      catchupWindow: config.RECON_CATCHUP_WINDOW,
    },
  };
}

/**
 * Creates the daily schedule, or brings an existing one to the configured spec: however often setup
 * runs, there is one schedule.
 */
export async function ensureReconciliationSchedule(
  client: Client,
  config: ReconConfig,
): Promise<{ scheduleId: string; created: boolean }> {
  const options = scheduleOptions(config);
  try {
    await client.schedule.create({ ...options, state: { note: 'daily reconciliation (payrecon)' } });
    return { scheduleId: options.scheduleId, created: true };
  } catch (error) {
    if (!(error instanceof ScheduleAlreadyRunning)) throw error;
  }
  await client.schedule.getHandle(options.scheduleId).update((previous) => ({
    ...previous,
    spec: options.spec,
    action: options.action,
    policies: { ...previous.policies, ...options.policies },
  }));
  return { scheduleId: options.scheduleId, created: false };
}

/**
 * Runs the days from..to through the schedule, one after another (BUFFER_ALL: a day's carried rows
 * need the day before reconciled first). Each scheduled time falls on the day after its bill date.
 */
export async function backfillReconciliation(
  client: Client,
  config: ReconConfig,
  from: string,
  to: string,
): Promise<{ days: number }> {
  if (!isBillDate(from) || !isBillDate(to)) throw new RangeError('--from and --to are dates (YYYY-MM-DD)');
  if (from > to) throw new RangeError(`--from ${from} is after --to ${to}`);
  await ensureReconciliationSchedule(client, config);
  const start = billDayBounds(shiftBillDate(from, 1)).start;
  const end = billDayBounds(shiftBillDate(to, 1)).end;
  await client.schedule.getHandle(reconciliationScheduleId(config.RECON_PROVIDER)).backfill({
    start,
    end: new Date(end.getTime() - 1),
    overlap: ScheduleOverlapPolicy.BUFFER_ALL,
  });
  return { days: Math.round((end.getTime() - start.getTime()) / 86_400_000) };
}
