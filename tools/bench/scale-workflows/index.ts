import { defineSignal, proxySinks, type Sinks, setHandler, sleep, workflowInfo } from '@temporalio/workflow';

/** Bench-only: a waiting order reduced to its timer, reporting how late the timer fired. */
export interface ProbeSinks extends Sinks {
  probe: {
    /** The first workflow task ran; `startedAt`: the workflow's start time. */
    started(startedAt: number): void;
    /** `firedAt`: workflow time (the workflow task's start) when the timer had fired. */
    fired(dueAt: number, firedAt: number): void;
  };
}

export interface WaitingOrderInput {
  orderId: string;
  amount: number;
  currency: string;
  /** Epoch ms at which the timer must fire. */
  dueAt: number;
  /** Calibration runs (measuring the start rate) report nothing. */
  calibration?: boolean;
}

export const wakeSignal = defineSignal('wake');

const { probe } = proxySinks<ProbeSinks>();

export async function waitingOrderProbe(input: WaitingOrderInput): Promise<void> {
  // Like an order's workflow: a signal handler, some state, one durable timer.
  const state = { ...input, phase: 'AWAITING_PAYMENT', wakes: 0 };
  setHandler(wakeSignal, () => {
    state.wakes++;
  });
  if (!input.calibration) probe.started(workflowInfo().startTime.getTime());
  await sleep(Math.max(1, input.dueAt - Date.now()));
  if (!input.calibration) probe.fired(state.dueAt, Date.now());
}
