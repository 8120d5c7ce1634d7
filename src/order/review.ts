import { type Client, WorkflowIdReusePolicy } from '@temporalio/client';
import { orderReviewWorkflow, type ReviewInput, type ReviewResult } from '../../workflows/review';
import { OrderIdKey, PaymentStatusKey } from '../../workflows/search-attributes';

export function reviewWorkflowId(orderId: string): string {
  return `review-${orderId}`;
}

/**
 * Runs an operator's decision on an order held for review as its own short workflow and waits for it.
 * Another decision later is harmless: the conditional update changes nothing once the order left review.
 */
export async function resolveReview(
  deps: { client: Client; taskQueue: string },
  input: ReviewInput,
): Promise<ReviewResult & { workflowId: string }> {
  const handle = await deps.client.workflow.start(orderReviewWorkflow, {
    workflowId: reviewWorkflowId(input.orderId),
    taskQueue: deps.taskQueue,
    args: [input],
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
    typedSearchAttributes: [
      { key: OrderIdKey, value: input.orderId },
      { key: PaymentStatusKey, value: input.outcome },
    ],
    staticSummary: `review of order ${input.orderId}: ${input.outcome} (${input.note})`,
  });
  return { ...(await handle.result()), workflowId: handle.workflowId };
}
