import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  log,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { RefundNotice } from '../src/domain';
import { formatDuration, ladderDelay } from './ladder';
import { notifyMerchant } from './notify-merchant';
import { db, finalCheck } from './order-activities';
import {
  type RefundPhase,
  type RefundState,
  type RefundWorkflowInput,
  refundCheckSignal,
  refundNoticeSignal,
  refundStateQuery,
} from './refund-contract';
import {
  type Answer,
  askProvider,
  fromSnapshot,
  type RefundRun,
  recordLateNotices,
  takeNotice,
} from './refund-settle';
import { RefundStatusKey } from './search-attributes';

const DEFAULT_HISTORY_LIMIT = 2_000;
const SEEN_IDS_CARRIED = 500;

/**
 * One refund, on the same two paths as a payment: submit it (idempotent by out_request_no), then the
 * provider's refund notice settles it at once, or refund queries on a ladder do. Only the provider's
 * explicit refusal ends it FAILED; an answer that cannot be read leaves it PROCESSING for the queries.
 * Past the deadline it is UNKNOWN with a REFUND_UNCONFIRMED discrepancy, never a silent success, and
 * the workflow waits on: a late notice or an operator's check settles it through the same steps. A
 * notice that differs from the refund is checked with the provider first. A success is one conditional
 * update of the refund and the order together; a failure leaves the order as it was.
 */
export async function refundWorkflow(input: RefundWorkflowInput): Promise<RefundState> {
  const carried = input.carried;
  const state: RefundState = {
    refundId: input.refundId,
    phase: carried ? 'UNKNOWN' : 'SUBMITTING',
    queries: 0,
    noticesReceived: 0,
    checksRequested: carried?.checksPending ?? 0,
    checksDone: 0,
    nextCheckAt: null,
    settledBy: null,
  };
  const inbox: RefundNotice[] = [...(carried?.pendingNotices ?? [])];
  const seen = new Set<string>(carried?.seenMessageIds ?? []);
  let checksPending = carried?.checksPending ?? 0;
  setHandler(refundNoticeSignal, (notice) => {
    if (notice.outRequestNo !== input.outRequestNo || seen.has(notice.messageId)) return;
    seen.add(notice.messageId);
    state.noticesReceived++;
    inbox.push(notice);
  });
  setHandler(refundCheckSignal, () => {
    state.checksRequested++;
    checksPending++;
  });
  setHandler(refundStateQuery, () => state);

  const refund: RefundRun = { input, state, refundNo: carried?.refundNo ?? null };
  let answer: Answer | null = null;
  if (!carried) {
    const submitted = await submit(input);
    answer = submitted.answer;
    refund.refundNo = submitted.refundNo;
    state.phase = 'PROCESSING';
  }
  const deadline = Date.parse(input.deadline);
  for (let step = 0; !answer; ) {
    const notice = inbox.shift();
    if (notice) {
      answer = await takeNotice(refund, notice);
      continue;
    }
    if (checksPending > 0) {
      checksPending = 0;
      answer = await askProvider(refund, `operator's refund check #${state.checksRequested}`);
      state.checksDone = state.checksRequested;
      continue;
    }
    const wake = () => inbox.length > 0 || checksPending > 0;
    if (state.phase === 'UNKNOWN') {
      if (historyTooLong(input)) {
        await condition(allHandlersFinished);
        return continueAsNew<typeof refundWorkflow>({
          ...input,
          carried: {
            refundNo: refund.refundNo,
            pendingNotices: inbox,
            seenMessageIds: [...seen].slice(-SEEN_IDS_CARRIED),
            checksPending,
          },
        });
      }
      // Nothing more is asked on its own: a late notice or an operator's check wakes it.
      await condition(wake);
      continue;
    }
    const now = Date.now();
    if (now >= deadline) {
      await db.markRefundUnconfirmed.executeWithOptions(
        { summary: 'no answer by the refund deadline: UNKNOWN, for an operator' },
        [input.refundId],
      );
      setPhase(state, 'UNKNOWN');
      continue;
    }
    const delay = Math.min(ladderDelay(input.ladder, step), deadline - now);
    state.nextCheckAt = new Date(now + delay).toISOString();
    const woken = await condition(wake, delay, {
      summary: `waiting for refund notice, next refund query in ${formatDuration(delay)}`,
    });
    state.nextCheckAt = null;
    if (woken) continue;
    step++;
    answer = await askProvider(refund, `refund query #${state.queries + 1}`);
  }
  const phase = await settle(input, state, answer);
  // After the last await: a notice that came while a query, the settle or the merchant's notification
  // ran is still in the inbox. Recorded, and flagged when it says otherwise than the outcome.
  await recordLateNotices(input, inbox, phase);
  return end(state, phase);
}

/**
 * Keeps trying until the provider answers; every try carries the same out_request_no and amount. Only an
 * explicit refusal (a refusal code the gateway knows) fails the refund here: an answer that cannot be
 * read (a 404, a body or a status payrecon does not know) may hide a refund the provider executed, so
 * it leaves the refund PROCESSING and the refund queries find out.
 */
async function submit(
  input: RefundWorkflowInput,
): Promise<{ answer: Answer | null; refundNo: string | null }> {
  try {
    const snapshot = await finalCheck.submitRefund.executeWithOptions(
      { summary: `submit refund ${input.outRequestNo} of ${input.amount}` },
      [
        {
          orderId: input.orderId,
          outRequestNo: input.outRequestNo,
          amount: input.amount,
          reason: input.reason,
        },
      ],
    );
    return { answer: fromSnapshot(snapshot, 'poll'), refundNo: snapshot.refundNo };
  } catch (error) {
    const cause = error instanceof ActivityFailure ? error.cause : undefined;
    if (cause instanceof ApplicationFailure && cause.type === 'ProviderRefusedError') {
      return {
        answer: { outcome: 'FAILED', refundNo: null, reason: cause.message, by: 'poll' },
        refundNo: null,
      };
    }
    log.warn('refund submission answered ambiguously; refund queries settle it', { error: String(error) });
    return { answer: null, refundNo: null };
  }
}

async function settle(input: RefundWorkflowInput, state: RefundState, answer: Answer): Promise<RefundPhase> {
  state.settledBy = answer.by;
  if (answer.outcome === 'FAILED') {
    await db.failRefund.executeWithOptions({ summary: 'refund failed: the order stays as it was' }, [
      { refundId: input.refundId, reason: answer.reason ?? 'refused' },
    ]);
    return 'FAILED';
  }
  const result = await db.applyRefund.executeWithOptions({ summary: `apply refund (${answer.by})` }, [
    { refundId: input.refundId, settledBy: answer.by, providerRefundNo: answer.refundNo },
  ]);
  if (result.event) await notifyMerchant(input.orderId, result.event);
  return 'SUCCEEDED';
}

function historyTooLong(input: RefundWorkflowInput): boolean {
  const info = workflowInfo();
  return info.historyLength > (input.historyLimit ?? DEFAULT_HISTORY_LIMIT) || info.continueAsNewSuggested;
}

function setPhase(state: RefundState, phase: RefundPhase): void {
  state.phase = phase;
  upsertSearchAttributes([{ key: RefundStatusKey, value: phase }]);
}

function end(state: RefundState, phase: RefundPhase): RefundState {
  setPhase(state, phase);
  return state;
}
