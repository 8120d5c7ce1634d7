import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/main';
import { setEventStatus } from '../src/db/merchant';
import { orderWorkflowId } from '../src/domain';
import { checkDeliveries, type MerchantClient, startMerchant } from '../tools/merchant/client';
import type { RunningMerchantSimulator } from '../tools/merchant/server';
import { SimulatorClient } from '../tools/simulator/client';
import { deliveryWorkflowId } from '../workflows/notify-merchant';
import { inProcessCli } from './support/cli';
import { deleteTopology, eventually, testConfig } from './support/env';
import { type Stack, startStack } from './support/stack';

/**
 * Merchant notifications end to end on the real dev server, Postgres, RabbitMQ, the payment simulator
 * and the merchant simulator, driven through the operator CLI: an endpoint is added, an order names it,
 * its payment produces exactly one event, the merchant sees it signed, and an operator lists, shows,
 * redelivers, recovers and disables.
 */
describe('payrecon notifications (CLI, real services)', () => {
  const config = testConfig('notify-cli');
  let stack: Stack;
  let merchant: { simulator: RunningMerchantSimulator; client: MerchantClient };
  const { cli, cliJson } = inProcessCli(runCli, () => stack.config);

  beforeAll(async () => {
    stack = await startStack(config, { simulator: true });
    merchant = await startMerchant({ config: stack.config });
  });
  afterAll(async () => {
    await merchant?.simulator.close();
    await stack?.stop();
    await deleteTopology(config);
  });

  /** An endpoint at the merchant simulator, its secret known to both sides. */
  const addEndpoint = async (merchantId: string) => {
    const added = await cliJson<{ endpoint: { id: string }; secrets: string[] }>([
      'notifications',
      'endpoints',
      'add',
      '--url',
      merchant.simulator.hookUrl(merchantId),
      '--ladder',
      'exponential',
    ]);
    await merchant.client.setSecrets(merchantId, added.secrets);
    return added.endpoint.id;
  };

  /** An order naming the endpoint, paid by an operator's notice of its own trade (the provider's was lost). */
  const paidOrder = async (endpointId: string) => {
    const created = await cliJson<{
      order: { id: string; notifyEndpointId: string };
      trade: { tradeNo: string };
    }>(['order', 'create', '--amount', '1500', '--ladder', '1h', '--notify-endpoint', endpointId]);
    expect(created.order.notifyEndpointId).toBe(endpointId);
    const orderId = created.order.id;
    await new SimulatorClient(stack.config.PROVIDER_URL).pay(orderId, { faults: { drop: true } });
    await cliJson(['signal', 'notify', orderId, '--trade-no', created.trade.tradeNo, '--amount', '1500']);
    await stack.temporal.workflow.getHandle(orderWorkflowId(orderId)).result();
    return orderId;
  };

  /** Waits until the order's delivery workflow (its latest run) has ended. */
  const delivered = (orderId: string) =>
    stack.temporal.workflow.getHandle(deliveryWorkflowId(orderId)).result();

  const events = (orderId: string) =>
    cliJson<{ events: { id: string; type: string; status: string; attempts: number; sequence: number }[] }>([
      'notifications',
      'list',
      '--order',
      orderId,
    ]);

  it('a paid order produces one order.paid event; the merchant gets it signed; list and show say so', async () => {
    const endpointId = await addEndpoint('shop-a');
    const orderId = await paidOrder(endpointId);
    const [event, ...more] = (await events(orderId)).events;
    expect(more).toHaveLength(0);
    expect(event).toMatchObject({ type: 'order.paid', sequence: 1 });
    const id = event?.id ?? '';
    await delivered(orderId);
    const seen = await merchant.client.deliveries({ orderId });
    expect(checkDeliveries(seen, { webhookIds: [id] })).toEqual({ ok: true, problems: [] });
    expect(seen.every((d) => d.signatureValid && d.webhookId === id)).toBe(true);

    const shown = await cliJson<{
      event: { status: string };
      attempts: { attempt: number; httpStatus: number }[];
    }>(['notifications', 'show', id]);
    expect(shown.event.status).toBe('DELIVERED');
    expect(shown.attempts).toEqual([expect.objectContaining({ attempt: 1, httpStatus: 200 })]);
  });

  it('redeliver sends the same event again with the same id; recover re-drives EXHAUSTED ones', async () => {
    const endpointId = await addEndpoint('shop-b');
    const orderId = await paidOrder(endpointId);
    const id = (await events(orderId)).events[0]?.id ?? '';
    await delivered(orderId);

    expect((await cli(['notifications', 'redeliver', id])).code).toBe(0);
    await delivered(orderId);
    await eventually('two deliveries', async () =>
      (await merchant.client.deliveries({ orderId })).length === 2 ? true : undefined,
    );

    // As if its ladder had run out during a merchant outage: recover --since picks it up.
    await setEventStatus(stack.db, id, 'EXHAUSTED');
    const since = new Date(Date.now() - 60_000).toISOString();
    const recovered = await cliJson<{ redelivered: string[] }>([
      'notifications',
      'recover',
      '--since',
      since,
    ]);
    expect(recovered.redelivered).toContain(id);
    await delivered(orderId);
    const seen = await merchant.client.deliveries({ orderId });
    expect(seen).toHaveLength(3);
    expect(new Set(seen.map((d) => d.webhookId))).toEqual(new Set([id]));
    expect((await events(orderId)).events[0]).toMatchObject({ status: 'DELIVERED', attempts: 3 });
  });

  it('list --stuck shows a PENDING event nobody delivers once its ladder span has passed; recover sends it', async () => {
    const endpointId = await addEndpoint('shop-stuck');
    const orderId = await paidOrder(endpointId);
    const id = (await events(orderId)).events[0]?.id ?? '';
    await delivered(orderId);
    // As after a redelivery whose start failed: PENDING, no workflow, for longer than the ladder's span.
    await stack.db.execute(
      sql`update merchant_events set status = 'PENDING', updated_at = now() - interval '1 hour' where id = ${id}`,
    );
    const stuck = await cliJson<{ events: { id: string; status: string }[] }>([
      'notifications',
      'list',
      '--stuck',
    ]);
    expect(stuck.events.find((e) => e.id === id)).toMatchObject({ status: 'PENDING' });
    expect((await cli(['notifications', 'list', '--stuck', '--status', 'DELIVERED'])).code).toBe(2);

    const since = new Date(Date.now() - 60_000).toISOString();
    const recovered = await cliJson<{ redelivered: string[] }>([
      'notifications',
      'recover',
      '--since',
      since,
    ]);
    expect(recovered.redelivered).toContain(id);
    await delivered(orderId);
    expect((await events(orderId)).events[0]).toMatchObject({ status: 'DELIVERED', attempts: 2 });
    const after = await cliJson<{ events: { id: string }[] }>(['notifications', 'list', '--stuck']);
    expect(after.events.map((e) => e.id)).not.toContain(id);
  });

  it("a refund's order.refunded event reaches the merchant after order.paid, with its own id", async () => {
    const endpointId = await addEndpoint('shop-refund');
    // Paid at the provider (a refund needs a paid trade there), its notice consumed from RabbitMQ.
    const created0 = await cliJson<{ order: { id: string } }>([
      'order',
      'create',
      '--amount',
      '1500',
      '--ladder',
      '1h',
      '--notify-endpoint',
      endpointId,
    ]);
    const orderId = created0.order.id;
    await new SimulatorClient(stack.config.PROVIDER_URL).pay(orderId);
    await stack.temporal.workflow.getHandle(orderWorkflowId(orderId)).result();
    const created = await cliJson<{ workflowId: string }>(['refund', 'create', orderId]);
    expect(await stack.temporal.workflow.getHandle(created.workflowId).result()).toMatchObject({
      phase: 'SUCCEEDED',
    });
    const listed = (await events(orderId)).events.sort((a, b) => a.sequence - b.sequence);
    expect(listed.map((e) => [e.sequence, e.type])).toEqual([
      [1, 'order.paid'],
      [2, 'order.refunded'],
    ]);
    await delivered(orderId);
    const seen = await merchant.client.deliveries({ orderId });
    expect(checkDeliveries(seen, { webhookIds: listed.map((e) => e.id) })).toEqual({
      ok: true,
      problems: [],
    });
    expect(seen.map((d) => d.eventType)).toEqual(['order.paid', 'order.refunded']);
  });

  it('a disabled endpoint is not sent to; endpoints list shows why; bad input exits 2', async () => {
    const endpointId = await addEndpoint('shop-c');
    expect((await cli(['notifications', 'endpoints', 'disable', endpointId])).code).toBe(0);
    const listed = await cliJson<{ endpoints: { id: string; status: string; disabledReason: string }[] }>([
      'notifications',
      'endpoints',
      'list',
    ]);
    expect(listed.endpoints.find((e) => e.id === endpointId)).toMatchObject({
      status: 'DISABLED',
      disabledReason: 'disabled by an operator',
    });
    const orderId = await paidOrder(endpointId);
    await delivered(orderId);
    expect((await events(orderId)).events[0]).toMatchObject({ status: 'ENDPOINT_DISABLED', attempts: 0 });
    expect(await merchant.client.deliveries({ orderId })).toHaveLength(0);
    expect((await cli(['notifications', 'endpoints', 'enable', endpointId])).code).toBe(0);

    expect((await cli(['notifications', 'endpoints', 'add', '--url', 'ftp://x'])).code).toBe(2);
    expect((await cli(['notifications', 'list', '--status', 'LOST'])).code).toBe(2);
    expect((await cli(['notifications', 'show', 'evt_nope_1'])).code).toBe(1);
    expect((await cli(['order', 'create', '--amount', '5', '--notify-endpoint', 'ep_nope'])).code).toBe(1);
  });
});
