import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Database, Sql } from '../src/db/client';
import * as recon from '../src/db/reconciliation';
import { findStatement, readStoredStatement, stageStatementRows, storeStatement } from '../src/db/statements';
import { type PaymentNotice, reconciledProvider } from '../src/domain';
import { deliverPaymentNotice } from '../src/order/deliver-notice';
import type { LadderConfig } from '../src/order/start';
import { type PaymentGateway, ProviderReplyError, StatementUrlExpiredError } from '../src/provider/gateway';
import { asGateways, type PaymentGateways, ProviderNotEnabledError } from '../src/provider/select';
import { StatementFormatError } from '../src/provider/statement';
import { shiftBillDate } from '../src/provider/statement-format';

/**
 * The daily reconciliation's I/O, one step each (workflows/reconciliation.ts runs them in order): fetch
 * and store the statement, stage its rows, match the day in SQL, hand healable breaks to the orders'
 * own workflows, and the summary. Every step is idempotent, so a retry (a killed worker) is harmless.
 */

/** How often a download whose URL expired asks for a new one before the activity's own retry. */
const URL_ATTEMPTS = 3;
/** How often matchStatement heartbeats (its heartbeat timeout is 30 s, workflows/reconciliation.ts). */
const MATCH_BEAT_MS = 5_000;

export interface FetchedStatement {
  statementId: number;
  sha256: string;
  bytes: number;
  /** False: the same file as an earlier download of the day, whose staged rows are reused. */
  isNew: boolean;
  urlRequests: number;
}

/** One day's match: the statement staged for it, and the run it belongs to (null: a dry run). */
export interface MatchInput {
  provider: string;
  billDate: string;
  statementId: number;
  runId: number | null;
  midnightEdgeMs: number;
}

export function createReconciliationActivities(
  db: Database,
  gateway: PaymentGateway | PaymentGateways,
  config?: LadderConfig,
) {
  const sql = db.$client as Sql;
  const gateways = asGateways(gateway);

  /** The reconciled provider's gateway: a provider this worker has none for fails the run for good. */
  function gatewayOf(reconciliation: string): PaymentGateway {
    const provider = reconciledProvider(reconciliation);
    if (!provider) {
      throw ApplicationFailure.nonRetryable(
        `reconciliation ${JSON.stringify(reconciliation)} names no payment provider`,
        ProviderNotEnabledError.name,
      );
    }
    try {
      return gateways.get(provider);
    } catch (error) {
      if (error instanceof ProviderNotEnabledError) throw nonRetryable(error);
      throw error;
    }
  }

  /** The day's match: control totals, the set-based match and the day's sums (src/db/reconciliation.ts). */
  async function matchDay(input: MatchInput) {
    const statement = await findStatement(sql, input.statementId);
    if (!statement?.parsedAt)
      throw ApplicationFailure.nonRetryable(`statement ${input.statementId} is not staged`);
    const totals = await recon.controlTotals(sql, statement);
    const previousStatementId = await recon.latestStatementOf(
      sql,
      input.provider,
      shiftBillDate(input.billDate, -1),
    );
    const matchInput = { ...input, statement, previousStatementId };
    const control = recon.controlTotalBreaks(totals, statement.rejectedCount);
    const breaks = await recon.matchStatement(sql, matchInput, control);
    const day = await recon.dayTotals(sql, matchInput);
    return {
      breaks,
      controlTotalsOk: control.length === 0,
      theirs: totals.computed,
      declared: totals.declared,
      rejectedLines: statement.rejectedCount,
      ours: day.ours,
      matchedPayments: day.matchedPayments,
    };
  }

  return {
    async startReconciliationRun(input: {
      provider: string;
      billDate: string;
      workflowId: string;
      workflowRunId: string;
    }): Promise<number> {
      return recon.startRun(sql, input);
    },

    /**
     * Asks where the day's statement is and downloads it in the same attempt (the URL expires in
     * seconds), storing the raw file and its SHA-256 as it streams. An expired URL is asked for again.
     */
    async fetchStatement(input: {
      provider: string;
      billDate: string;
      runId: number | null;
    }): Promise<FetchedStatement> {
      const context = Context.current();
      const gateway = gatewayOf(input.provider);
      for (let urlRequests = 1; ; urlRequests++) {
        const location = await unlessUnreadable(() => gateway.statementLocation(input.billDate));
        try {
          const file = await gateway.downloadStatement(location);
          const stored = await storeStatement(sql, { ...input, format: location.format }, file, (bytes) =>
            context.heartbeat({ bytes }),
          );
          if (input.runId !== null) await recon.attachStatement(sql, input.runId, stored.id);
          return {
            statementId: stored.id,
            sha256: stored.sha256,
            bytes: stored.bytes,
            isNew: stored.isNew,
            urlRequests,
          };
        } catch (error) {
          if (error instanceof StatementUrlExpiredError && urlRequests < URL_ATTEMPTS) {
            context.log.warn('statement download URL expired; asking for a new one', { urlRequests });
            continue;
          }
          if (error instanceof ProviderReplyError) throw nonRetryable(error);
          throw error;
        }
      }
    },

    /**
     * Copies the stored statement's rows into staging with COPY, in batches that commit with their
     * count: a retry (another worker, after this one was killed) resumes after the last batch.
     */
    async stageStatement(input: { statementId: number }) {
      const context = Context.current();
      const statement = await findStatement(sql, input.statementId);
      if (!statement) throw ApplicationFailure.nonRetryable(`statement ${input.statementId} is not stored`);
      if (statement.parsedAt) {
        return {
          rowsStaged: statement.rowsStaged,
          resumedFrom: statement.rowsStaged,
          rejected: statement.rejectedCount,
        };
      }
      if (statement.rowsStaged > 0) context.log.info('resuming staging', { after: statement.rowsStaged });
      const entries = gatewayOf(statement.provider).readStatement(
        readStoredStatement(sql, statement.id),
        statement.format,
      );
      try {
        return await stageStatementRows(sql, statement, entries, {
          onBatch: (progress) => context.heartbeat(progress),
        });
      } catch (error) {
        if (error instanceof StatementFormatError) throw nonRetryable(error);
        throw error;
      }
    },

    /** Checks the statement's own totals and matches the day; a dry run (runId null) only counts. */
    async matchStatement(input: MatchInput) {
      // Set-based SQL has no progress to report: the beat only says this worker is alive, so a killed
      // worker's match is retried within the heartbeat timeout, not after the 30 min start-to-close.
      const context = Context.current();
      const beat = setInterval(() => context.heartbeat({ phase: 'matching' }), MATCH_BEAT_MS);
      try {
        return await matchDay(input);
      } finally {
        clearInterval(beat);
      }
    },

    /**
     * Hands each of this run's MISSING_LOCALLY breaks (rows the provider reports paid) to its order's
     * workflow as a `reconciliation` payment fact with the row's status: a running workflow checks it
     * with the provider (one trade query) and settles it through its own conditional update; an ended
     * one records it (PAID_AFTER_CLOSE, ...), the same path as a late MQ notice.
     */
    async healBreaks(input: { provider: string; billDate: string; runId: number }) {
      if (!config)
        throw ApplicationFailure.nonRetryable('healing needs the order configuration (worker config)');
      const context = Context.current();
      const counts: Record<string, number> = {};
      for (const item of await recon.healableBreaks(sql, input.runId)) {
        const notice: PaymentNotice = {
          messageId: `recon:${input.provider}:${input.billDate}:${item.orderId}:${item.tradeNo}`,
          orderId: item.orderId,
          source: 'reconciliation',
          tradeNo: item.tradeNo,
          status: item.status,
          amount: item.amount,
          currency: item.currency,
          paidAt: item.occurredAt,
        };
        const delivery = await deliverPaymentNotice({ db, temporal: context.client, config }, notice);
        await recon.noteHealAction(sql, item.id, delivery.outcome);
        counts[delivery.outcome] = (counts[delivery.outcome] ?? 0) + 1;
        context.heartbeat(counts);
      }
      return counts;
    },

    async confirmHealed(input: { runId: number }) {
      return recon.confirmHealed(sql, input.runId);
    },

    async reconciliationBreakCounts(input: { runId: number }) {
      return recon.runBreakCounts(sql, input.runId);
    },

    async finishReconciliationRun(input: { runId: number; summary: unknown }): Promise<void> {
      await recon.finishRun(sql, input.runId, input.summary);
    },
  };
}

async function unlessUnreadable<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof ProviderReplyError) throw nonRetryable(error);
    throw error;
  }
}

function nonRetryable(error: Error): ApplicationFailure {
  return ApplicationFailure.nonRetryable(error.message, error.name);
}
