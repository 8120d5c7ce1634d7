import { describe, expect, it } from 'vitest';
import {
  discrepancyForPaidFact,
  judgePaidFact,
  noticeChecks,
  noticeContradictions,
  noticeMismatches,
  refundNoticeContradictions,
  refundNoticeMismatches,
  type TradeSnapshot,
  wasPaid,
} from '../src/domain';

/** The payment rules the workflow and the ended-workflow path share, one place each (src/domain). */
describe('paid-fact rules', () => {
  const order = { amount: 9_900, currency: 'CNY' };

  it('pays on matching money, holds for review on any difference', () => {
    expect(judgePaidFact(order, { amount: 9_900, currency: 'CNY' })).toBe('PAY');
    expect(judgePaidFact(order, { amount: 9_899, currency: 'CNY' })).toBe('AMOUNT_MISMATCH');
    expect(judgePaidFact(order, { amount: 9_900, currency: 'USD' })).toBe('AMOUNT_MISMATCH');
    expect(judgePaidFact(order, { amount: null, currency: null })).toBe('AMOUNT_MISMATCH');
  });

  it('names the discrepancy a paid fact raises against an order it can no longer pay', () => {
    const fact = { tradeNo: 'T2' };
    expect(discrepancyForPaidFact({ status: 'CLOSED', tradeNo: null }, fact)).toBe('PAID_AFTER_CLOSE');
    expect(discrepancyForPaidFact({ status: 'PAID', tradeNo: 'T1' }, fact)).toBe('DUPLICATE_PAYMENT');
    expect(discrepancyForPaidFact({ status: 'PAID', tradeNo: 'T2' }, fact)).toBeNull();
    expect(discrepancyForPaidFact({ status: 'NEEDS_REVIEW', tradeNo: 'T1' }, fact)).toBe(
      'PAID_DURING_REVIEW',
    );
    expect(discrepancyForPaidFact({ status: 'NEEDS_REVIEW', tradeNo: 'T2' }, fact)).toBeNull();
    expect(discrepancyForPaidFact({ status: 'UNPAID', tradeNo: null }, fact)).toBe('ORPHAN_NOTICE');
  });

  it('a notice is checked when it names another trade than the one opened, or other money', () => {
    const claim = { tradeNo: 'T1', amount: 9_900, currency: 'CNY' };
    expect(noticeMismatches({ ...order, tradeNo: 'T1' }, claim)).toEqual([]);
    expect(noticeMismatches({ ...order }, claim)).toEqual([]);
    expect(noticeMismatches({ ...order, tradeNo: 'T0' }, { ...claim, amount: 1, currency: 'USD' })).toEqual([
      'tradeNo',
      'amount',
      'currency',
    ]);
  });

  it('only an MQ notice that matches may pay without a trade query; manual and reconciliation never do', () => {
    const opened = { ...order, tradeNo: 'T1' };
    const claim = { tradeNo: 'T1', amount: 9_900, currency: 'CNY' };
    expect(noticeChecks(opened, { ...claim, source: 'mq' })).toEqual([]);
    expect(noticeChecks({ ...opened, verifyNotices: 'always' }, { ...claim, source: 'mq' })).toEqual([
      'always',
    ]);
    expect(noticeChecks(opened, { ...claim, amount: 1, source: 'mq' })).toEqual(['amount']);
    expect(noticeChecks(opened, { ...claim, source: 'manual' })).toEqual(['manual notice']);
    expect(noticeChecks(opened, { ...claim, source: 'reconciliation' })).toEqual(['reconciliation notice']);
  });

  it('the provider contradicts a notice when its trade is unpaid, or paid otherwise than claimed', () => {
    const claim = { tradeNo: 'T1', amount: 9_900, currency: 'CNY' };
    const paid: TradeSnapshot = {
      orderId: 'o',
      status: 'TRADE_SUCCESS',
      tradeNo: 'T1',
      amount: 9_900,
      currency: 'CNY',
      paidAt: null,
    };
    expect(noticeContradictions(paid, claim)).toEqual([]);
    expect(noticeContradictions({ ...paid, status: 'TRADE_FINISHED' }, claim)).toEqual([]);
    expect(noticeContradictions({ ...paid, status: 'WAIT_BUYER_PAY' }, claim)).toEqual(['status']);
    expect(noticeContradictions({ ...paid, status: 'NOT_FOUND' }, claim)).toEqual(['status']);
    expect(noticeContradictions({ ...paid, tradeNo: 'T9', amount: 1 }, claim)).toEqual(['tradeNo', 'amount']);
  });

  it('a TRADE_CLOSED trade with a refunded amount was paid; one without was closed unpaid', () => {
    expect(wasPaid({ status: 'TRADE_CLOSED', refundedAmount: 9_900 })).toBe(true);
    expect(wasPaid({ status: 'TRADE_CLOSED', refundedAmount: 0 })).toBe(false);
    expect(wasPaid({ status: 'TRADE_CLOSED' })).toBe(false);
    expect(wasPaid({ status: 'TRADE_FINISHED' })).toBe(true);
    expect(wasPaid({ status: 'WAIT_BUYER_PAY' })).toBe(false);
  });
});

describe('refund notice rules', () => {
  const refund = { orderId: 'o1', amount: 9_900, refundNo: 'R1' };
  const notice = {
    messageId: 'm1',
    orderId: 'o1',
    source: 'mq' as const,
    outRequestNo: 'o1-R1',
    refundNo: 'R1',
    status: 'REFUND_SUCCESS' as const,
    amount: 9_900,
    currency: 'CNY',
    refundedAt: '2026-01-01T00:00:00Z',
  };

  it('a notice that differs from its refund (order, amount, refund number) is checked with the provider', () => {
    expect(refundNoticeMismatches(refund, notice)).toEqual([]);
    expect(refundNoticeMismatches(refund, { ...notice, amount: 100, refundNo: 'INVENTED' })).toEqual([
      'amount',
      'refundNo',
    ]);
    expect(refundNoticeMismatches(refund, { ...notice, orderId: 'o2' })).toEqual(['orderId']);
    // Before the provider answered the request, its refund number is not known yet.
    expect(refundNoticeMismatches({ ...refund, refundNo: null }, { ...notice, refundNo: 'R9' })).toEqual([]);
  });

  it("the provider's answer contradicts a notice by outcome, refund number or amount", () => {
    const provider = { status: 'SUCCESS', refundNo: 'R1', amount: 9_900 };
    expect(refundNoticeContradictions(provider, notice)).toEqual([]);
    expect(refundNoticeContradictions({ ...provider, status: 'FAILED' }, notice)).toEqual(['status']);
    expect(refundNoticeContradictions({ ...provider, status: 'PROCESSING' }, notice)).toEqual(['status']);
    expect(refundNoticeContradictions(provider, { ...notice, amount: 100, refundNo: 'X' })).toEqual([
      'refundNo',
      'amount',
    ]);
  });
});
