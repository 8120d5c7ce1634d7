import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import {
  ApplicationFailure,
  defineQuery,
  executeChild,
  ParentClosePolicy,
  proxyActivities,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { BreakCounts } from '../src/db/reconciliation';
import type { StatementSummary } from '../src/provider/statement-format';
import { billDateOf, shiftBillDate } from '../src/provider/statement-format';
import { db } from './order-activities';
import { ReconDateKey, ReconStatusKey, TemporalScheduledStartTime } from './search-attributes';

/**
 * One day's reconciliation against the provider's statement (`reconciliation-<provider>-<date>`):
 * fetch and store the statement, stage its rows, match the day in SQL, hand what an order's workflow
 * can settle to that workflow, wait a little for them to settle, and end with the summary (also the
 * workflow's result, readable in the Web UI). A dry run counts the breaks and writes none.
 */

export interface ReconciliationInput {
  provider: string;
  /** YYYY-MM-DD, the provider's (Asia/Shanghai) calendar day. */
  billDate: string;
  dryRun?: boolean;
  midnightEdgeMs: number;
  /** How long to wait for signalled orders to settle before reporting them. */
  healWaitMs: number;
}

export type ReconciliationPhase = 'FETCHING' | 'STAGING' | 'MATCHING' | 'HEALING' | 'BALANCED' | 'BREAKS';

export interface ReconciliationSummary {
  provider: string;
  billDate: string;
  dryRun: boolean;
  /** reconciliation_runs.id; null on a dry run. */
  runId: number | null;
  statement: {
    sha256: string;
    bytes: number;
    reused: boolean;
    urlRequests: number;
    rejectedLines: number;
    /**
     * False: the statement fails its own control totals (CONTROL_TOTALS breaks). Its breaks are reported
     * and nothing else changes: no healing, no break resolved as no longer found, no midnight carry.
     */
    controlTotalsOk: boolean;
  };
  /** What the statement's rows add up to, and what its summary line says they do. */
  theirs: StatementSummary;
  declared: StatementSummary | null;
  ours: { payCount: number; payAmount: number; refundCount: number; refundAmount: number };
  matchedPayments: number;
  /** By kind and status, after healing. */
  breaks: BreakCounts;
  totalBreaks: number;
  open: number;
  expected: number;
  healed: number;
  /** What handing breaks to the orders' workflows did: signalled, recorded-after-end, unknown-order. */
  healing: Record<string, number>;
  status: 'BALANCED' | 'BREAKS';
}

export const reconciliationPhaseQuery = defineQuery<ReconciliationPhase>('reconciliationPhase');

export function reconciliationWorkflowId(provider: string, billDate: string): string {
  return `reconciliation-${provider}-${billDate}`;
}

const fetching = proxyActivities<Activities>({
  startToCloseTimeout: '10m',
  heartbeatTimeout: '30s',
  // A statement not out yet (T+1) or a provider that is down: ask again, for most of a day.
  scheduleToCloseTimeout: '20h',
  retry: { initialInterval: '10s', backoffCoefficient: 2, maximumInterval: '10m' },
});
const staging = proxyActivities<Activities>({
  startToCloseTimeout: '30m',
  // Short, so a killed worker's batch is picked up by another soon; batches heartbeat every second or so.
  heartbeatTimeout: '15s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' },
});
const matching = proxyActivities<Activities>({
  startToCloseTimeout: '30m',
  // The match heartbeats while its SQL runs: a killed worker's match moves on in 30 s, not 30 min.
  heartbeatTimeout: '30s',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '5m' },
});

const HEAL_CHECK_MS = 2_000;

export async function reconciliationWorkflow(input: ReconciliationInput): Promise<ReconciliationSummary> {
  let phase: ReconciliationPhase = 'FETCHING';
  setHandler(reconciliationPhaseQuery, () => phase);
  const enter = (next: ReconciliationPhase) => {
    phase = next;
    upsertSearchAttributes([{ key: ReconStatusKey, value: next }]);
  };
  const dryRun = input.dryRun ?? false;
  const { workflowId, runId: workflowRunId } = workflowInfo();

  const runId = dryRun
    ? null
    : await db.startReconciliationRun({
        provider: input.provider,
        billDate: input.billDate,
        workflowId,
        workflowRunId,
      });
  const fetched = await fetching.fetchStatement.executeWithOptions(
    { summary: `fetch the ${input.billDate} statement` },
    [{ provider: input.provider, billDate: input.billDate, runId }],
  );
  enter('STAGING');
  await staging.stageStatement.executeWithOptions(
    { summary: fetched.isNew ? 'stage the statement rows (COPY)' : 'same file as before: reuse its rows' },
    [{ statementId: fetched.statementId }],
  );
  enter('MATCHING');
  const matched = await matching.matchStatement.executeWithOptions({ summary: 'match the day in SQL' }, [
    { ...input, statementId: fetched.statementId, runId },
  ]);

  let breaks = matched.breaks;
  let healing: Record<string, number> = {};
  // A statement that does not add up is reported, never acted on (matchStatement resolved nothing).
  if (runId !== null && matched.controlTotalsOk) {
    enter('HEALING');
    healing = await staging.healBreaks.executeWithOptions(
      { summary: "hand healable breaks to the orders' workflows" },
      [{ provider: input.provider, billDate: input.billDate, runId }],
    );
    if ((healing.signalled ?? 0) > 0) await waitForHealing(runId, input.healWaitMs);
    breaks = await db.reconciliationBreakCounts({ runId });
  }

  const summary = summarize(input, runId, fetched, matched, breaks, healing);
  if (runId !== null) await db.finishReconciliationRun({ runId, summary });
  enter(summary.status);
  return summary;
}

/** Signalled orders settle in their own workflows, usually within a second: check until they all did. */
async function waitForHealing(runId: number, waitMs: number): Promise<void> {
  for (let waited = 0; ; waited += HEAL_CHECK_MS) {
    const { waiting } = await db.confirmHealed({ runId });
    if (waiting === 0 || waited >= waitMs) return;
    await sleep(HEAL_CHECK_MS);
  }
}

function summarize(
  input: ReconciliationInput,
  runId: number | null,
  fetched: { sha256: string; bytes: number; isNew: boolean; urlRequests: number },
  matched: {
    theirs: StatementSummary;
    declared: StatementSummary | null;
    rejectedLines: number;
    ours: ReconciliationSummary['ours'];
    matchedPayments: number;
    controlTotalsOk: boolean;
  },
  breaks: BreakCounts,
  healing: Record<string, number>,
): ReconciliationSummary {
  const count = (status?: string) =>
    Object.values(breaks).reduce(
      (sum, byStatus) =>
        sum +
        Object.entries(byStatus ?? {}).reduce(
          (n, [s, c]) => n + (status === undefined || s === status ? (c ?? 0) : 0),
          0,
        ),
      0,
    );
  const open = count('OPEN');
  return {
    provider: input.provider,
    billDate: input.billDate,
    dryRun: runId === null,
    runId,
    statement: {
      sha256: fetched.sha256,
      bytes: fetched.bytes,
      reused: !fetched.isNew,
      urlRequests: fetched.urlRequests,
      rejectedLines: matched.rejectedLines,
      controlTotalsOk: matched.controlTotalsOk,
    },
    theirs: matched.theirs,
    declared: matched.declared,
    ours: matched.ours,
    matchedPayments: matched.matchedPayments,
    breaks,
    totalBreaks: count(),
    open,
    expected: count('EXPECTED'),
    healed: count('AUTO_HEALED'),
    healing,
    status: open === 0 ? 'BALANCED' : 'BREAKS',
  };
}

// --- the daily schedule ----------------------------------------------------------------------------------

export interface ScheduledReconciliationInput {
  provider: string;
  midnightEdgeMs: number;
  healWaitMs: number;
}

/**
 * What the Temporal Schedule starts each day (and for each backfilled day): the run of the day before
 * its scheduled time, as a child with the day's own id, so a day has one id however it was started.
 */
export async function scheduledReconciliationWorkflow(
  input: ScheduledReconciliationInput,
): Promise<ReconciliationSummary | { billDate: string; alreadyRunning: true }> {
  const scheduledAt = workflowInfo().typedSearchAttributes.get(TemporalScheduledStartTime);
  if (!scheduledAt)
    throw ApplicationFailure.nonRetryable('started without a schedule time: use `payrecon recon run`');
  const billDate = shiftBillDate(billDateOf(scheduledAt), -1);
  try {
    return await executeChild(reconciliationWorkflow, {
      workflowId: reconciliationWorkflowId(input.provider, billDate),
      args: [{ ...input, billDate }],
      parentClosePolicy: ParentClosePolicy.ABANDON,
      typedSearchAttributes: [
        { key: ReconDateKey, value: billDate },
        { key: ReconStatusKey, value: 'FETCHING' },
      ],
      staticSummary: `reconciliation of ${billDate} (${input.provider})`,
    });
  } catch (error) {
    // An operator's `recon run` of the same day got there first.
    if (error instanceof WorkflowExecutionAlreadyStartedError) return { billDate, alreadyRunning: true };
    throw error;
  }
}
