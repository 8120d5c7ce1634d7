import { randomUUID } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { createRefundActivities } from '../activities/refunds';
import { createDatabase } from '../src/db/client';
import { ensureDatabase } from '../src/db/migrate';
import {
  closeOrder,
  insertOrder,
  markOrderPaid,
  recordDiscrepancy,
  resolveDiscrepancy,
} from '../src/db/orders';
import { createRefund } from '../src/db/refunds';
import { type DiscrepancyKind, discrepancySubject } from '../src/domain';
import { handleNoticeForEndedWorkflow } from '../src/order/late-notice';
import { noMetrics, type PayreconMetrics } from '../src/platform/metrics';
import { testConfig } from './support/env';
import { paidNotice } from './support/notice';

/**
 * payment_discrepancies is keyed on (order, kind, subject): what a discrepancy is about (a trade, a refund
 * request, a notice). The same fact again adds nothing; another one of the same kind is never dropped.
 */
const config = testConfig('discrepancy');
const database = createDatabase(config.DATABASE_URL, { max: 3 });
const AMOUNT = 5_000;

afterAll(async () => {
  await database.close();
});

async function newOrder(): Promise<string> {
  const id = `dc_${randomUUID().slice(0, 12)}`;
  await insertOrder(database.db, {
    id,
    amount: AMOUNT,
    currency: 'CNY',
    payDeadline: new Date(Date.now() + 3_600_000),
  });
  return id;
}

async function paidOrder(): Promise<string> {
  const id = await newOrder();
  await markOrderPaid(database.db, {
    orderId: id,
    tradeNo: `SIM-${id}`,
    paidAt: new Date(),
    settledBy: 'mq',
  });
  return id;
}

const rows = (orderId: string) =>
  database.sql<{ id: number; kind: string; subject: string; resolved: boolean }[]>`
    select id::int as id, kind, subject, resolved_at is not null as resolved
    from payment_discrepancies where order_id = ${orderId} order by id`;

describe('discrepancy key (order, kind, subject)', () => {
  it('a second trade paid after close is a second PAID_AFTER_CLOSE; a redelivery of either adds nothing', async () => {
    const orderId = await newOrder();
    await closeOrder(database.db, { orderId, reason: 'PAY_DEADLINE_PASSED', settledBy: 'poll' });
    const order = { id: orderId, status: 'CLOSED' as const, tradeNo: null };
    const first = paidNotice(orderId, AMOUNT, { tradeNo: 'T-FIRST', messageId: `m1-${orderId}` });
    const second = paidNotice(orderId, AMOUNT, { tradeNo: 'T-SECOND', messageId: `m2-${orderId}` });
    await handleNoticeForEndedWorkflow(database.db, order, first);
    await handleNoticeForEndedWorkflow(database.db, order, second);
    // The same trade again (another message of it, and an activity re-run with the same details).
    await handleNoticeForEndedWorkflow(database.db, order, { ...first, messageId: `m3-${orderId}` });
    expect(
      await recordDiscrepancy(database.db, {
        orderId,
        kind: 'PAID_AFTER_CLOSE',
        details: { tradeNo: 'T-SECOND' },
      }),
    ).toBe(false);
    expect((await rows(orderId)).map(({ kind, subject }) => ({ kind, subject }))).toEqual([
      { kind: 'PAID_AFTER_CLOSE', subject: 'T-FIRST' },
      { kind: 'PAID_AFTER_CLOSE', subject: 'T-SECOND' },
    ]);
  });

  it('a resolved discrepancy does not block a new one about another subject, and still refuses its own', async () => {
    const orderId = await paidOrder();
    const contradiction = (messageId: string) => ({
      orderId,
      kind: 'REFUND_CONTRADICTS_RECORD' as const,
      details: { refundId: 'rf_x', refundStatus: 'FAILED', notice: 'REFUND_SUCCESS', messageId },
    });
    expect(await recordDiscrepancy(database.db, contradiction('rn-1'))).toBe(true);
    const [first] = await rows(orderId);
    if (!first) throw new Error('no discrepancy recorded');
    expect((await resolveDiscrepancy(database.db, first.id, 'checked with the provider')).resolved).toBe(
      true,
    );
    expect(await recordDiscrepancy(database.db, contradiction('rn-1'))).toBe(false);
    expect(await recordDiscrepancy(database.db, contradiction('rn-2'))).toBe(true);
    expect(await rows(orderId)).toEqual([
      { id: first.id, kind: 'REFUND_CONTRADICTS_RECORD', subject: 'rn-1', resolved: true },
      { id: expect.any(Number), kind: 'REFUND_CONTRADICTS_RECORD', subject: 'rn-2', resolved: false },
    ]);
  });

  it('two refunds left UNKNOWN are two REFUND_UNCONFIRMED, each counted once however often it is re-run', async () => {
    const orderId = await paidOrder();
    const counted: DiscrepancyKind[] = [];
    const metrics: PayreconMetrics = { ...noMetrics, discrepancy: (kind) => counted.push(kind) };
    const activities = createRefundActivities(database.db, metrics);
    const one = await createRefund(database.db, { orderId, amount: 1_000 });
    const two = await createRefund(database.db, { orderId, amount: 2_000 });
    for (const refund of [one, two, one, two]) await activities.markRefundUnconfirmed(refund.id);
    expect((await rows(orderId)).map(({ kind, subject }) => ({ kind, subject }))).toEqual([
      { kind: 'REFUND_UNCONFIRMED', subject: one.outRequestNo },
      { kind: 'REFUND_UNCONFIRMED', subject: two.outRequestNo },
    ]);
    expect(counted).toEqual(['REFUND_UNCONFIRMED', 'REFUND_UNCONFIRMED']);
  });

  it('an explicit subject wins over the details; details that name nothing key the order itself', async () => {
    const orderId = await newOrder();
    const invalid = { orderId, kind: 'PROVIDER_REPLY_INVALID' as const, details: { reason: 'x' } };
    expect(await recordDiscrepancy(database.db, invalid)).toBe(true);
    expect(await recordDiscrepancy(database.db, { ...invalid, details: { reason: 'y' } })).toBe(false);
    expect(await recordDiscrepancy(database.db, { ...invalid, subject: 'close' })).toBe(true);
    expect((await rows(orderId)).map((r) => r.subject)).toEqual(['', 'close']);
    expect(
      discrepancySubject('NOTICE_CONTRADICTS_PROVIDER', { notice: { messageId: 'n-1', tradeNo: 'T' } }),
    ).toBe('n-1');
    expect(discrepancySubject('REFUND_EXCEEDS_PAID', { refundId: 'rf_1', amount: 5 })).toBe('rf_1');
  });

  it('the migration keys existing rows on the subject their details name (the same rule as new rows)', async () => {
    // A database of its own, migrated to just before the subject, then to the end.
    const base = new URL(config.DATABASE_URL);
    const name = `${base.pathname.slice(1)}_subject_${randomUUID().slice(0, 8)}`;
    const url = new URL(config.DATABASE_URL);
    url.pathname = `/${name}`;
    const folder = path.resolve(__dirname, '../drizzle');
    const before = mkdtempSync(path.join(tmpdir(), 'payrecon-migrations-'));
    cpSync(folder, before, { recursive: true });
    const journalFile = path.join(before, 'meta/_journal.json');
    const journal = JSON.parse(readFileSync(journalFile, 'utf8')) as { entries: { tag: string }[] };
    const at = journal.entries.findIndex((entry) => entry.tag.endsWith('_discrepancy_subject'));
    expect(at).toBeGreaterThan(0);
    writeFileSync(journalFile, JSON.stringify({ ...journal, entries: journal.entries.slice(0, at) }));
    const admin = new URL(config.DATABASE_URL);
    admin.pathname = '/postgres';
    const adminSql = postgres(admin.toString(), { max: 1, onnotice: () => {} });
    let scratch: ReturnType<typeof createDatabase> | undefined;
    try {
      await ensureDatabase(url.toString());
      scratch = createDatabase(url.toString(), { max: 1 });
      await migrate(scratch.db, { migrationsFolder: before });
      const old: [DiscrepancyKind, Record<string, unknown>][] = [
        ['PAID_AFTER_CLOSE', { tradeNo: 'T1', messageId: 'm1', amount: 5 }],
        ['REFUND_UNCONFIRMED', { refundId: 'rf_1', outRequestNo: 'o-R1', amount: 5 }],
        ['REFUND_EXCEEDS_PAID', { refundId: 'rf_2', amount: 5 }],
        ['REFUND_CONTRADICTS_RECORD', { refundId: 'rf_3', messageId: 'rn-9' }],
        ['NOTICE_CONTRADICTS_PROVIDER', { fields: ['status'], notice: { messageId: 'n-1', tradeNo: 'T9' } }],
        ['PROVIDER_REPLY_INVALID', { reason: 'PAY_DEADLINE_PASSED', error: 'x' }],
        ['UNKNOWN_ORDER', { messageId: 'm2', tradeNo: null, amount: 5 }],
      ];
      for (const [kind, details] of old) {
        await scratch.sql`insert into payment_discrepancies (order_id, kind, details)
          values ('o', ${kind}, ${JSON.stringify(details)}::jsonb)`;
      }
      await migrate(scratch.db, { migrationsFolder: folder });
      const migrated = await scratch.sql<{ kind: DiscrepancyKind; subject: string }[]>`
        select kind, subject from payment_discrepancies order by id`;
      expect(migrated).toEqual(
        old.map(([kind, details]) => ({ kind, subject: discrepancySubject(kind, details) })),
      );
      expect(migrated.map((row) => row.subject)).toEqual(['T1', 'o-R1', 'rf_2', 'rn-9', 'n-1', '', 'm2']);
    } finally {
      await scratch?.close();
      await adminSql.unsafe(`drop database if exists "${name}" with (force)`);
      await adminSql.end();
      rmSync(before, { recursive: true, force: true });
    }
  });
});
