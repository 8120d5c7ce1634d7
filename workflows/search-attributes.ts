import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Custom search attributes, registered by scripts/temporal-dev.sh; filterable in the Web UI. */
export const OrderIdKey = defineSearchAttributeKey('OrderId', SearchAttributeType.KEYWORD);
/** UNPAID, CLOSING, PAID, CLOSED or NEEDS_REVIEW. */
export const PaymentStatusKey = defineSearchAttributeKey('PaymentStatus', SearchAttributeType.KEYWORD);
/** mq, poll or manual, once settled. */
export const SettledByKey = defineSearchAttributeKey('SettledBy', SearchAttributeType.KEYWORD);
/** A merchant notification's delivery: PENDING, DELIVERED, EXHAUSTED, ENDPOINT_DISABLED or NO_ENDPOINT. */
export const DeliveryStatusKey = defineSearchAttributeKey('DeliveryStatus', SearchAttributeType.KEYWORD);
/** A refund: PROCESSING, SUCCEEDED, FAILED or UNKNOWN. */
export const RefundStatusKey = defineSearchAttributeKey('RefundStatus', SearchAttributeType.KEYWORD);
/** A daily reconciliation run's bill date (YYYY-MM-DD, Asia/Shanghai). */
export const ReconDateKey = defineSearchAttributeKey('ReconDate', SearchAttributeType.KEYWORD);
/** A reconciliation run: FETCHING, STAGING, MATCHING, HEALING, then BALANCED or BREAKS. */
export const ReconStatusKey = defineSearchAttributeKey('ReconStatus', SearchAttributeType.KEYWORD);
/** Temporal's own: when a Schedule's action was due (set on every workflow a Schedule starts). */
export const TemporalScheduledStartTime = defineSearchAttributeKey(
  'TemporalScheduledStartTime',
  SearchAttributeType.DATETIME,
);
