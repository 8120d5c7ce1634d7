import {
  type Client,
  isGrpcServiceError,
  type WorkflowExecutionDescription,
  type WorkflowHandle,
  WorkflowNotFoundError,
} from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { Command } from 'commander';
import {
  initialOrderState,
  type OrderWorkflowInput,
  type OrderWorkflowResult,
  type OrderWorkflowState,
  orderStateQuery,
} from '../../workflows/order';
import { orderWorkflowId } from '../domain';
import { workflowUiLink } from '../platform/config';
import { type CliContext, CliError, describeError, parseOrderId } from './context';
import { emit, formatFields, money, withJson } from './output';

/** `query`: the order workflow's live state (orderStateQuery), answered by a worker. */

const QUERY_DEADLINE_MS = 10_000;
/** gRPC DEADLINE_EXCEEDED */
const DEADLINE_EXCEEDED = 4;

export interface WorkflowView {
  workflowId: string;
  /** RUNNING, COMPLETED, FAILED, TERMINATED, ... or NOT_FOUND. */
  status: string;
  runId?: string;
  taskQueue?: string;
  startTime?: string;
  closeTime?: string | null;
  historyLength?: number;
  webUi: string;
  state?: OrderWorkflowState;
  /** Set while a delayed start (ORDER_START_DELAY=first-step) has run no task: `state` is the initial one. */
  startsAt?: string;
  result?: OrderWorkflowResult;
  /** Why the state or result could not be read. */
  error?: string;
}

/**
 * A workflow created with a start delay (ORDER_START_DELAY=first-step) has no workflow task until the
 * delay ends or a notice starts it by signal-with-start, so no worker can answer a query yet: its state is
 * the one it starts with, read from its input. Null once it has a task (the query answers then).
 */
export async function stateBeforeFirstTask(
  handle: WorkflowHandle,
  description: WorkflowExecutionDescription,
): Promise<{ state: OrderWorkflowState; startsAt: string } | null> {
  const startsAt = description.executionTime;
  if (description.status.name !== 'RUNNING' || !startsAt || startsAt.getTime() <= Date.now()) return null;
  // Before its first task the history is the start and any plain signals: a few events.
  const events = (await handle.fetchHistory()).events ?? [];
  const { EventType } = temporal.api.enums.v1;
  if (events.some((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED)) return null;
  const payload = events[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  if (!payload) return null;
  const input = defaultPayloadConverter.fromPayload<OrderWorkflowInput>(payload);
  return {
    state: { ...initialOrderState(input), nextCheckAt: input.firstCheckAt ?? startsAt.toISOString() },
    startsAt: startsAt.toISOString(),
  };
}

/** The workflow's state via the query; a missing worker becomes a message, not a hang. */
export async function queryOrderState(
  client: Client,
  workflowId: string,
  taskQueue: string,
): Promise<OrderWorkflowState> {
  try {
    return await client.connection.withDeadline(Date.now() + QUERY_DEADLINE_MS, () =>
      client.workflow.getHandle(workflowId).query(orderStateQuery),
    );
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) {
      throw new CliError(`no workflow ${workflowId} on the Temporal server`);
    }
    // The client wraps the gRPC error in a ServiceError ("Failed to query Workflow").
    const grpc = isGrpcServiceError(error) ? error : (error as { cause?: unknown }).cause;
    if (isGrpcServiceError(grpc) && grpc.code === DEADLINE_EXCEEDED) {
      throw new CliError(
        `no worker answered the query on ${workflowId} within ${QUERY_DEADLINE_MS / 1000}s: is a worker polling task queue "${taskQueue}"? (npm run worker)`,
      );
    }
    throw new CliError(`query on ${workflowId} failed: ${describeError(error)}`);
  }
}

/** Describe plus the state (running) or the result (completed); best effort past the describe. */
export async function readWorkflow(ctx: CliContext, client: Client, orderId: string): Promise<WorkflowView> {
  const config = ctx.getConfig();
  const workflowId = orderWorkflowId(orderId);
  const webUi = workflowUiLink(config, workflowId);
  const handle = client.workflow.getHandle(workflowId);
  let description: Awaited<ReturnType<typeof handle.describe>>;
  try {
    description = await handle.describe();
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return { workflowId, status: 'NOT_FOUND', webUi };
    throw new CliError(`cannot describe workflow ${workflowId}: ${describeError(error)}`);
  }
  const view: WorkflowView = {
    workflowId,
    status: description.status.name,
    runId: description.runId,
    taskQueue: description.taskQueue,
    startTime: description.startTime.toISOString(),
    closeTime: description.closeTime?.toISOString() ?? null,
    historyLength: description.historyLength,
    webUi,
  };
  try {
    const delayed = await stateBeforeFirstTask(handle, description);
    if (delayed) {
      view.state = delayed.state;
      view.startsAt = delayed.startsAt;
    } else if (view.status === 'RUNNING') {
      view.state = await queryOrderState(client, workflowId, description.taskQueue);
    } else if (view.status === 'COMPLETED') {
      view.result = await client.connection.withDeadline(Date.now() + QUERY_DEADLINE_MS, () =>
        handle.result(),
      );
    }
  } catch (error) {
    view.error = describeError(error);
  }
  return view;
}

export function formatStartDelay(startsAt: string): string {
  return `not started yet: its first task runs at ${startsAt} (start delay, ORDER_START_DELAY=first-step), or at once when a payment notice comes; the state below is the one it starts with`;
}

export function formatState(state: OrderWorkflowState): string {
  return formatFields({
    phase: state.phase,
    'settled by': state.settledBy,
    amount: money(state.amount, state.currency),
    'pay deadline': state.payDeadline,
    'poll attempts': state.pollAttempts,
    'last poll': state.lastPoll
      ? `${state.lastPoll.status} at ${state.lastPoll.at}${state.lastPoll.error ? ` (${state.lastPoll.error})` : ''}`
      : null,
    'next check': state.nextCheckAt,
    'ladder step': state.ladderStep,
    notices: `${state.noticesReceived} received, ${state.duplicateNotices} duplicate(s)`,
    discrepancies: state.discrepancies,
    generation: state.generation,
  });
}

export function registerQueryCommand(program: Command, ctx: CliContext): void {
  withJson(
    program
      .command('query')
      .description("show an order workflow's live state (phase, poll attempts, last poll, how it settled)")
      .argument('<orderId>', 'the order whose workflow (order-<orderId>) to query', parseOrderId),
  ).action(async (orderId: string, options: { json?: boolean }) => {
    const client = await ctx.temporal();
    const workflowId = orderWorkflowId(orderId);
    const handle = client.workflow.getHandle(workflowId);
    const description = await handle.describe().catch((error: unknown) => {
      if (error instanceof WorkflowNotFoundError) {
        throw new CliError(`no workflow ${workflowId} on the Temporal server`);
      }
      throw new CliError(`cannot describe workflow ${workflowId}: ${describeError(error)}`);
    });
    const delayed = await stateBeforeFirstTask(handle, description);
    if (delayed) {
      const { state, startsAt } = delayed;
      emit(ctx, options, { workflowId, state, startsAt }, () =>
        [`workflow ${workflowId}`, formatStartDelay(startsAt), formatState(state)].join('\n'),
      );
      return;
    }
    const state = await queryOrderState(client, workflowId, ctx.getConfig().TEMPORAL_TASK_QUEUE);
    emit(ctx, options, { workflowId, state }, () => `workflow ${workflowId}\n${formatState(state)}`);
  });
}
