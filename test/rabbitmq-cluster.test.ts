import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orderWorkflowId } from '../src/domain';
import { amqpUrls } from '../src/mq/connect';
import type { Config } from '../src/platform/config';
import { activityTypes } from '../src/platform/history';
import { SimulatorClient } from '../tools/simulator/client';
import { deleteTopology, eventually, testConfig } from './support/env';
import { createOrderWithTrade, type Stack, startStack } from './support/stack';

/**
 * payrecon on a real three-node RabbitMQ cluster (scripts/rabbitmq-cluster.sh, own ports and data; the
 * machine's broker on 5672 is not touched): the consumer and the simulator's publisher get every node's
 * URL; the node leading the pay-success quorum queue is stopped mid-stream while buyers keep paying,
 * then started again. Every order must end PAID exactly once, settled by MQ (its ladder is an hour long,
 * so no poll can settle it within the test), with nothing parked.
 */

const run = promisify(execFile);
const SCRIPT = path.resolve(__dirname, '../scripts/rabbitmq-cluster.sh');
const NODES = 3;
const nodeName = (index: number) => `payrecon-rmq${index}@localhost`;

/** The cluster script; a failure throws with what it printed, so the test says why the cluster is missing. */
async function cluster(...args: string[]): Promise<string> {
  try {
    const { stdout } = await run('bash', [SCRIPT, ...args], { timeout: 180_000 });
    return stdout;
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(
      `scripts/rabbitmq-cluster.sh ${args.join(' ')} failed: ${(error as Error).message}\n${stdout ?? ''}${stderr ?? ''}`,
    );
  }
}

/** rabbitmqctl's JSON rows, asked of node `via` (a running one). */
async function ctlJson<T>(via: number, ...args: string[]): Promise<T[]> {
  return JSON.parse(await cluster('ctl', String(via), '-q', ...args, '--formatter', 'json')) as T[];
}

interface QueueRow {
  name: string;
  type: string;
  leader: string;
  members: string[];
  online: string[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('payrecon on a three-node RabbitMQ cluster', () => {
  let config: Config;
  let stack: Stack;
  let simulator: SimulatorClient;
  let urls: string[];

  beforeAll(async () => {
    // Fresh data every run; no skipping: a cluster that cannot start fails the test with the reason.
    await cluster('start', '--fresh', '--nodes', String(NODES));
    const urlList = (await cluster('urls')).trim();
    urls = amqpUrls(urlList);
    expect(urls).toHaveLength(NODES);
    config = testConfig('cluster', { AMQP_URL: urlList });
    stack = await startStack(config, {
      simulator: {
        // Outlast a leader election: each attempt waits up to 3 s for a confirm, then tries again.
        publisher: {
          publishTimeoutMs: 3_000,
          maxRetries: 20,
          retryBaseMs: 200,
          retryMaxMs: 1_000,
          reconnectSeconds: 1,
        },
      },
    });
    simulator = new SimulatorClient(stack.config.PROVIDER_URL, { timeoutMs: 60_000 });
  }, 240_000);

  afterAll(async () => {
    try {
      await stack?.stop();
      if (config) await deleteTopology(config).catch(() => {});
    } finally {
      // Always: the nodes must not outlive the test run.
      await cluster('stop');
    }
  }, 120_000);

  const queueRow = async (via: number, name: string): Promise<QueueRow> => {
    const rows = await ctlJson<QueueRow>(via, 'list_queues', 'name', 'type', 'leader', 'members', 'online');
    const row = rows.find((r) => r.name === name);
    if (!row)
      throw new Error(`queue ${name} is not on the cluster (seen: ${rows.map((r) => r.name).join(', ')})`);
    return row;
  };
  /** The broker ports (one per node) that client connections are open on, seen from node `via`. */
  const connectionPorts = async (via: number): Promise<number[]> =>
    (await ctlJson<{ port: number }>(via, 'list_connections', 'port')).map((c) => c.port);
  const portOf = (index: number) => Number(new URL(urls[index - 1] as string).port);

  it('the leader of pay-success stops mid-stream and comes back: every order PAID once by MQ, nothing parked', async () => {
    const { paySuccessQueue, retryQueue, parkingQueue } = stack.topology;

    // The work queue is a quorum queue with a member on every node (3.10's default initial group size).
    const before = await queueRow(1, paySuccessQueue);
    expect(before.type).toBe('quorum');
    expect([...before.members].sort()).toEqual([1, 2, 3].map(nodeName));
    expect((await queueRow(1, retryQueue)).members).toHaveLength(NODES);
    const leader = Number(/^payrecon-rmq(\d)@/.exec(before.leader)?.[1]);
    expect(leader).toBeGreaterThanOrEqual(1);
    const survivor = leader === 1 ? 2 : 1;
    // The premise of "reconnect": the consumer, the publisher and the stack's channel all sit on the
    // leader (they connect to the first URL, which declared the queue there).
    const portsBefore = await connectionPorts(survivor);
    expect(portsBefore.filter((port) => port === portOf(leader)).length).toBeGreaterThanOrEqual(3);

    const N = 44;
    const orders = [];
    for (let i = 0; i < N; i++) {
      // Hour-long ladder (createOrderWithTrade's default): only a notification settles these in time.
      orders.push((await createOrderWithTrade(stack, { amount: 5_000 + i })).order);
    }
    const pay = async (order: { id: string }) => {
      const reply = await simulator.pay(order.id);
      return { at: Date.now(), outcome: reply.notification.outcome };
    };
    const paidByMq = (ids: string[]) =>
      stack.sql`select id from orders where id = any(${ids}) and status = 'PAID' and settled_by = 'mq'`;

    // Phase 1: buyers pay at a steady pace (about 6 s); the leader is stopped after the third payment,
    // and the stop takes a few seconds: payments go on while it happens and after.
    const first = orders.slice(0, 20);
    let stoppedAt = Number.POSITIVE_INFINITY;
    const paying = (async () => {
      const replies: Promise<{ at: number; outcome: string }>[] = [];
      for (const order of first) {
        replies.push(pay(order));
        await sleep(300);
      }
      return Promise.all(replies);
    })();
    await sleep(3 * 300);
    await cluster('stop-node', String(leader));
    stoppedAt = Date.now();
    const firstReplies = await paying;
    expect(firstReplies.map((r) => r.outcome)).toEqual(first.map(() => 'published'));

    // Phase 2, the leader still down: a new leader among the survivors, and payments settle through it.
    const during = await eventually(
      'a new leader of pay-success',
      async () => {
        const row = await queueRow(survivor, paySuccessQueue);
        return row.leader !== nodeName(leader) && row.online.length === NODES - 1 ? row : undefined;
      },
      30_000,
    );
    expect(during.online).not.toContain(nodeName(leader));
    const second = orders.slice(20, 32);
    const secondReplies = await Promise.all(second.map((order) => pay(order)));
    expect(secondReplies.map((r) => r.outcome)).toEqual(second.map(() => 'published'));
    const secondIds = second.map((o) => o.id);
    await eventually(
      'the orders paid while the leader was down PAID by mq, before it is back',
      async () => ((await paidByMq(secondIds)).length === second.length ? true : undefined),
      30_000,
    );
    // Consumer and publisher reconnected to the survivors: no connection is left on the stopped node.
    const portsDuring = await connectionPorts(survivor);
    expect(portsDuring).not.toContain(portOf(leader));
    expect(portsDuring.length).toBeGreaterThanOrEqual(2);
    expect(stack.simulator?.publisher.isConnected()).toBe(true);

    // Phase 3: the old leader comes back and rejoins as a follower; payments go on.
    await cluster('start-node', String(leader));
    await eventually(
      'every member of pay-success online again',
      async () => ((await queueRow(survivor, paySuccessQueue)).online.length === NODES ? true : undefined),
      30_000,
    );
    const third = orders.slice(32);
    const thirdReplies = await Promise.all(third.map((order) => pay(order)));
    expect(thirdReplies.map((r) => r.outcome)).toEqual(third.map(() => 'published'));

    // Every order PAID exactly once, by MQ.
    const ids = orders.map((o) => o.id);
    await eventually(
      `all ${N} orders PAID by mq`,
      async () => ((await paidByMq(ids)).length === N ? true : undefined),
      40_000,
    );
    // The stop really was mid-stream: some payments of phase 1 were answered after it.
    expect(firstReplies.some((r) => r.at > stoppedAt)).toBe(true);
    const events = await stack.sql`
      select order_id, count(*)::int as n from payment_events where order_id = any(${ids}) group by order_id`;
    expect(events).toHaveLength(N);
    expect(events.every((e) => e.n === 1)).toBe(true);
    const discrepancies =
      await stack.sql`select kind from payment_discrepancies where order_id = any(${ids})`;
    expect(discrepancies).toEqual([]);
    for (const order of orders) {
      const history = await stack.temporal.workflow.getHandle(orderWorkflowId(order.id)).fetchHistory();
      expect(activityTypes(history).filter((type) => type === 'markOrderPaidByNotice')).toHaveLength(1);
    }

    // Nothing parked, nothing left waiting; the queues are read through connectAny again.
    expect(stack.consumer?.stats.parked).toEqual({});
    expect(stack.consumer?.stats.delivered).toBeGreaterThanOrEqual(N);
    expect(await stack.drainParking()).toEqual([]);
    await eventually(
      'the work and retry queues empty',
      async () =>
        (await stack.queueDepth(paySuccessQueue)) === 0 && (await stack.queueDepth(retryQueue)) === 0
          ? true
          : undefined,
      10_000,
    );
    expect(await stack.queueDepth(parkingQueue)).toBe(0);
  }, 150_000);

  it("a message parked while the parking queue's node is down is parked once the node is back, once", async () => {
    const { parkingQueue } = stack.topology;
    // The classic parking queue's home node, from its process id (rabbitmqctl's table shows the node).
    const listing = await cluster('ctl', '1', '-q', 'list_queues', 'name', 'pid', '--no-table-headers');
    const line = listing.split('\n').find((l) => l.split('\t')[0] === parkingQueue);
    const home = Number(/<payrecon-rmq(\d)@/.exec(line ?? '')?.[1]);
    expect(home).toBeGreaterThanOrEqual(1);
    const survivor = home === 1 ? 2 : 1;
    const consumer = stack.consumer;
    if (!consumer) throw new Error('the stack has no consumer');
    const deferredBefore = consumer.stats.parkDeferred ?? 0;
    const parkedBefore = consumer.stats.parked.BAD_SIGNATURE ?? 0;
    // Parks the consumer tried: counted parked (the broker confirmed) or deferred (the broker returned it).
    const tried = () =>
      (consumer.stats.parkDeferred ?? 0) -
      deferredBefore +
      (consumer.stats.parked.BAD_SIGNATURE ?? 0) -
      parkedBefore;

    await cluster('stop-node', String(home));
    // Signed with a wrong secret: the consumer parks it BAD_SIGNATURE. Published through a survivor.
    const messageId = `forged-while-parking-node-down-${Date.now()}`;
    await stack.publish(
      {
        version: 1,
        messageId,
        orderId: 'ord_none',
        tradeNo: 'T-none',
        status: 'TRADE_SUCCESS',
        amount: 1,
        currency: 'CNY',
        paidAt: new Date().toISOString(),
      },
      { secret: 'not-the-shared-secret', messageId },
    );
    // The consumer reconnects to a survivor, takes the message and parks it while the parking queue's
    // node is down. Without mandatory parks the broker confirms that park and drops the message; with
    // them it returns it, and the consumer sends it to the retry queue to be judged (and parked) again.
    await eventually(
      'the consumer tried to park the message while the node was down',
      async () => (tried() >= 1 ? true : undefined),
      60_000,
    );
    await sleep(2_000); // a few more retry rounds with the node still down
    expect(await connectionPorts(survivor)).not.toContain(portOf(home));

    await cluster('start-node', String(home));
    await eventually(
      'every member of pay-success online again',
      async () =>
        (await queueRow(survivor, stack.topology.paySuccessQueue)).online.length === NODES ? true : undefined,
      30_000,
    );
    // The retry delay is 300 ms: a deferred park is parked within a few seconds of the node's return.
    await sleep(5_000);
    const parked = await stack.drainParking();
    expect(parked.map((m) => m.properties.messageId)).toEqual([messageId]);
    expect(parked[0]?.properties.headers?.['x-payrecon-reason']).toBe('BAD_SIGNATURE');
    // Deferred while the node was down, parked once after it came back.
    expect(consumer.stats.parkDeferred).toBeGreaterThanOrEqual(deferredBefore + 1);
    expect(consumer.stats.parked.BAD_SIGNATURE).toBe(parkedBefore + 1);
    expect(await stack.queueDepth(stack.topology.retryQueue)).toBe(0);
  }, 180_000);
});
