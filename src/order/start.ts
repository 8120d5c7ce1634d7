import { randomBytes } from 'node:crypto';
import { type Client, WorkflowIdReusePolicy } from '@temporalio/client';
import { type OrderWorkflowInput, orderWorkflow } from '../../workflows/order';
import { OrderIdKey, PaymentStatusKey } from '../../workflows/search-attributes';
import type { Database } from '../db/client';
import { insertOrder, type OrderRow } from '../db/orders';
import { isPaymentProvider, orderWorkflowId, PAYMENT_PROVIDERS, type TradeSnapshot } from '../domain';
import { type Config, enabledProviders } from '../platform/config';
import type { PaymentGateway } from '../provider/gateway';
import { asGateways, type PaymentGateways, ProviderNotEnabledError } from '../provider/select';

export type LadderConfig = Pick<
  Config,
  | 'POLL_LADDER'
  | 'POLL_REPEAT'
  | 'PAY_DEADLINE'
  | 'ORDER_START_DELAY'
  | 'TEMPORAL_TASK_QUEUE'
  | 'VERIFY_PAID_NOTICES'
  | 'MERCHANT_DEFAULT_ENDPOINT'
> &
  // Optional so that configurations made before providers were per order still type; unset: simulator.
  Partial<Pick<Config, 'PAYMENT_PROVIDER' | 'PAYMENT_PROVIDERS'>>;

export function newOrderId(): string {
  return `ord_${Date.now().toString(36)}${randomBytes(5).toString('hex')}`;
}

/** The workflow's input for an order row; the consumer uses it too, to start a workflow a notice beat. */
export function orderWorkflowInput(
  row: Pick<OrderRow, 'id' | 'amount' | 'currency' | 'payDeadline' | 'providerTradeNo'>,
  config: LadderConfig,
  overrides: { pollLadder?: OrderWorkflowInput['pollLadder'] } = {},
): OrderWorkflowInput {
  return {
    orderId: row.id,
    amount: row.amount,
    currency: row.currency,
    payDeadline: row.payDeadline.toISOString(),
    pollLadder: overrides.pollLadder ?? { stepsMs: config.POLL_LADDER, repeatMs: config.POLL_REPEAT },
    ...(row.providerTradeNo ? { tradeNo: row.providerTradeNo } : {}),
    ...(config.VERIFY_PAID_NOTICES === 'always' ? { verifyNotices: 'always' as const } : {}),
  };
}

/**
 * Options shared by every start of an order's workflow. REJECT_DUPLICATE: once an order's workflow has
 * ended, nothing (not even a late notice's signalWithStart) can start a second one.
 */
export function orderWorkflowStartOptions(input: OrderWorkflowInput, taskQueue: string) {
  return {
    workflowId: orderWorkflowId(input.orderId),
    taskQueue,
    args: [input] as [OrderWorkflowInput],
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    typedSearchAttributes: [
      { key: OrderIdKey, value: input.orderId },
      { key: PaymentStatusKey, value: 'UNPAID' },
    ],
    memo: { amount: input.amount, currency: input.currency, payDeadline: input.payDeadline },
    staticSummary: `order ${input.orderId}: ${(input.amount / 100).toFixed(2)} ${input.currency}`,
  };
}

/**
 * With ORDER_START_DELAY=first-step the first workflow task waits for the ladder's first step: a notice
 * before then (signal-with-start, the one path notices take) starts it at once and the order settles in
 * that one task, with no timer started and cancelled; otherwise the task runs the first check. The
 * CLI's plain signals (cancel, payment initiated) use signal-with-start too, so none waits for the delay.
 * A deadline sooner than the first step shortens the delay to it.
 */
function startDelayOf(input: OrderWorkflowInput, config: LadderConfig): number | null {
  if (config.ORDER_START_DELAY !== 'first-step') return null;
  const firstStep = input.pollLadder.stepsMs[0] ?? input.pollLadder.repeatMs;
  // Never past the pay deadline: an order due before its first step must still close on time.
  const delay = Math.min(firstStep, Date.parse(input.payDeadline) - Date.now());
  return delay > 0 ? Math.floor(delay) : null;
}

export interface CreateOrderRequest {
  orderId?: string;
  amount: number;
  currency?: string;
  /** Milliseconds from now; default PAY_DEADLINE. */
  payWithinMs?: number;
  pollLadder?: OrderWorkflowInput['pollLadder'];
  /** Where its result notifications go (merchant_endpoints.id); default MERCHANT_DEFAULT_ENDPOINT. */
  notifyEndpointId?: string;
  /** The provider its trade is opened at, one of PAYMENT_PROVIDERS; default PAYMENT_PROVIDER. */
  provider?: string;
}

/**
 * The provider a new order is at: the request's, else PAYMENT_PROVIDER. One this process has not enabled
 * is refused before anything is opened or written (ProviderNotEnabledError, naming it).
 */
export function orderProviderOf(config: LadderConfig, requested: string | undefined) {
  const provider = requested ?? config.PAYMENT_PROVIDER ?? 'simulator';
  if (!isPaymentProvider(provider)) {
    throw new ProviderNotEnabledError(
      `unknown payment provider ${JSON.stringify(provider)}: one of ${PAYMENT_PROVIDERS.join(', ')}`,
    );
  }
  const enabled = enabledProviders({ PAYMENT_PROVIDER: 'simulator', ...config });
  if (!enabled.includes(provider)) {
    throw new ProviderNotEnabledError(
      `payment provider ${provider} is not enabled (PAYMENT_PROVIDERS: ${enabled.join(', ')})`,
    );
  }
  return provider;
}

/**
 * Opens the order's trade at the provider (given a gateway), creates the order row with the trade's
 * number, then starts its workflow. A provider that is down does not stop the order: it is created
 * without a trade number (`tradeError` says why), and its notices are then checked on the money only.
 */
export async function createOrder(
  deps: { db: Database; client: Client; config: LadderConfig; gateway?: PaymentGateway | PaymentGateways },
  request: CreateOrderRequest,
) {
  if (!Number.isSafeInteger(request.amount) || request.amount <= 0) {
    throw new Error(`amount must be a positive whole number of minor units, got ${request.amount}`);
  }
  const provider = orderProviderOf(deps.config, request.provider);
  const gateway = deps.gateway ? asGateways(deps.gateway).get(provider) : null;
  const id = request.orderId ?? newOrderId();
  const currency = request.currency ?? 'CNY';
  let trade: TradeSnapshot | null = null;
  let tradeError: string | null = null;
  if (gateway) {
    try {
      trade = await gateway.openTrade({ orderId: id, amount: request.amount, currency });
    } catch (error) {
      tradeError = error instanceof Error ? error.message : String(error);
    }
  }
  const row = await insertOrder(deps.db, {
    id,
    amount: request.amount,
    currency,
    provider,
    payDeadline: new Date(Date.now() + (request.payWithinMs ?? deps.config.PAY_DEADLINE)),
    providerTradeNo: trade?.tradeNo ?? null,
    notifyEndpointId: request.notifyEndpointId ?? deps.config.MERCHANT_DEFAULT_ENDPOINT ?? null,
  });
  const ladderInput = orderWorkflowInput(row, deps.config, { pollLadder: request.pollLadder });
  const startDelay = startDelayOf(ladderInput, deps.config);
  const input = startDelay
    ? { ...ladderInput, firstCheckAt: new Date(Date.now() + startDelay).toISOString() }
    : ladderInput;
  const handle = await deps.client.workflow.start(orderWorkflow, {
    ...orderWorkflowStartOptions(input, deps.config.TEMPORAL_TASK_QUEUE),
    ...(startDelay ? { startDelay } : {}),
  });
  return { order: row, workflowId: handle.workflowId, trade, tradeError };
}
