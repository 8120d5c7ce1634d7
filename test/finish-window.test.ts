import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { type Activities, createActivities } from '../activities';
import { createDatabase } from '../src/db/client';
import { createEndpoint, findEvent, listAttempts } from '../src/db/merchant';
import { findOrder, insertOrder } from '../src/db/orders';
import { orderWorkflowInput, orderWorkflowStartOptions } from '../src/order/start';
import { installWorkerRuntime } from '../workers/runtime';
import { deliveryWorkflowId } from '../workflows/notify-merchant';
import { orderWorkflow, paymentNoticeSignal } from '../workflows/order';
import { testConfig } from './support/env';
import { FINISH_SCENARIOS, HistoryRecorder } from './support/histories';
import { paidNotice } from './support/notice';
import { ScriptedGateway } from './support/scripted-gateway';
import { scenarioOf, startTestWorker, startTimeSkipping } from './support/time-skipping';

const { EventType } = temporal.api.enums.v1;

/**
 * An order that ends while a notice is on its way: the notice lands while the workflow starts the
 * merchant notification of its last transition (a child start is one more workflow task) and must
 * still be recorded. A file of its own, with its own time-skipping server: once a parent has ended
 * with an abandoned child, that server stops skipping time for later tests (sdk-typescript#1101).
 */
const config = testConfig('finish');
const database = createDatabase(config.DATABASE_URL, { max: 5 });
const gateway = new ScriptedGateway();
const AMOUNT = 9_900;
const LADDER = { stepsMs: [3_000, 30_000], repeatMs: 60_000 };
/** `<orderId>` → runs once that order's closeOrder has committed, before its reply. */
const afterCloseOrder = new Map<string, () => Promise<void>>();
// A shop that answers every merchant notification with success.
const shop = createServer((_req, res) => res.writeHead(200).end('success'));
let shopUrl = '';
const histories = new HistoryRecorder(FINISH_SCENARIOS);
let env: TestWorkflowEnvironment;
let worker: Awaited<ReturnType<typeof startTestWorker>> | undefined;

function withCloseHook(activities: Activities): Activities {
  return {
    ...activities,
    async closeOrder(input) {
      const result = await activities.closeOrder(input);
      // Once: the task that ran this close fails when the signal lands during it (the workflow ends in
      // that same task), and its local activities run again in the retried task.
      const hook = afterCloseOrder.get(input.orderId);
      afterCloseOrder.delete(input.orderId);
      await hook?.();
      return result;
    },
  };
}

beforeAll(async () => {
  await new Promise<void>((resolve) => shop.listen(0, '127.0.0.1', resolve));
  shopUrl = `http://127.0.0.1:${(shop.address() as AddressInfo).port}/hooks`;
  installWorkerRuntime('ERROR');
  env = await startTimeSkipping();
  worker = await startTestWorker(env, {
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    activities: withCloseHook(
      createActivities({ db: database.db, gateway, merchantAllowlist: config.MERCHANT_PRIVATE_ALLOWLIST }),
    ),
  });
});

afterAll(async (file) => {
  await worker?.stop();
  await env?.teardown();
  await new Promise<void>((resolve) => shop.close(() => resolve()));
  await database.close();
  await histories.finish(file);
});

const scenario = scenarioOf(histories);

describe('an order ending while a notice arrives (time-skipping)', () => {
  scenario(
    'paid-during-merchant-notification',
    'a notice signalled while the closed order starts its merchant notification is recorded and flagged PAID_AFTER_CLOSE',
    async () => {
      const ep = await createEndpoint(database.db, { url: shopUrl });
      const orderId = `fw_${randomUUID().slice(0, 12)}`;
      const row = await insertOrder(database.db, {
        id: orderId,
        amount: AMOUNT,
        currency: 'CNY',
        payDeadline: new Date((await env.currentTimeMs()) + 10 * 60_000),
        providerTradeNo: `SIM-${orderId}`,
        notifyEndpointId: ep.id,
      });
      gateway.script(orderId, { amount: AMOUNT });
      const input = orderWorkflowInput(row, config, { pollLadder: LADDER });
      const handle = await env.client.workflow.start(
        orderWorkflow,
        orderWorkflowStartOptions(input, config.TEMPORAL_TASK_QUEUE),
      );
      const late = paidNotice(orderId, AMOUNT);
      // Signalled once the order is CLOSED and the inbox was looked at: it lands while the child starts.
      afterCloseOrder.set(orderId, () => handle.signal(paymentNoticeSignal, late));

      expect(await handle.result()).toMatchObject({ status: 'CLOSED', discrepancies: ['PAID_AFTER_CLOSE'] });
      expect(await findOrder(database.db, orderId)).toMatchObject({
        status: 'CLOSED',
        closeReason: 'PAY_DEADLINE_PASSED',
      });
      const events = await database.sql`select message_id from payment_events where order_id = ${orderId}`;
      expect(events.filter((e) => e.message_id === late.messageId)).toHaveLength(1);
      const flagged = await database.sql`select kind from payment_discrepancies where order_id = ${orderId}`;
      expect(flagged).toEqual([{ kind: 'PAID_AFTER_CLOSE' }]);
      // The window itself: the notice landed during the task that closed the order, handed its event to
      // the delivery workflow and ended the order; the server refused that task's completion, and the
      // retried task read the notice before it closed and handed over again.
      const history = (await handle.fetchHistory()).events ?? [];
      const refused = history.findIndex((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED);
      const signalled = history.findIndex(
        (e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
      );
      const handedOver = history.findIndex((e) => {
        const data = e.markerRecordedEventAttributes?.details?.data?.payloads?.[0]?.data;
        return data ? Buffer.from(data).toString('utf8').includes('"startMerchantDelivery"') : false;
      });
      expect(refused).toBeGreaterThan(0);
      expect(signalled).toBeGreaterThan(refused);
      expect(handedOver).toBeGreaterThan(signalled);
      // And the shop heard of the close, once: the retried task's second hand-over found it delivered
      // or being delivered (the database is the delivery queue).
      const [closed] = await database.sql`select id from merchant_events where order_id = ${orderId}`;
      await env.client.workflow.getHandle(deliveryWorkflowId(orderId)).result();
      expect(await findEvent(database.db, String(closed?.id))).toMatchObject({ status: 'DELIVERED' });
      expect(await listAttempts(database.db, String(closed?.id))).toHaveLength(1);
      return handle;
    },
  );
});
