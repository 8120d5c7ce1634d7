import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import pino from 'pino';
import { orders } from '../../src/db/schema';
import { type CreateOrderRequest, createOrder } from '../../src/order/start';
import { AlipayPaymentGateway } from '../../src/provider/alipay';
import { ALIPAY_NOTIFY_PATH } from '../../src/receiver/app';
import { type RunningReceiver, startReceiver } from '../../src/receiver/start';
import { type FakeAlipay, FakeAlipayControl, startFakeAlipay } from '../../tools/providers/alipay/server';
import { deleteTopology, testConfig } from './env';
import { type Stack, startStack } from './stack';

/**
 * Alipay in the tests: the keys (Alipay's, the merchant's, a stranger's), their files, and the lifecycle
 * on the real services with PAYMENT_PROVIDER=alipay: the fake Alipay, the notification receiver, and a
 * stack (worker on the dev server, consumer, Postgres) whose gateway is the Alipay adapter.
 */

export const APP_ID = '2021000000000042';
export const SELLER_ID = '2088000000000042';
export const alipayKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
export const strangerKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
export const merchant = generateKeyPairSync('rsa', { modulusLength: 2048 });
export const merchantPrivatePem = merchant.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
export const merchantPublicPem = merchant.publicKey.export({ type: 'spki', format: 'pem' }).toString();
/** Short enough that the whole ladder of notifications (8 attempts) runs in a test. */
export const LADDER_MS: [number, number, ...number[]] = [100, 150, 150, 200, 200, 250, 250];

const keyDir = mkdtempSync(path.join(tmpdir(), 'payrecon-alipay-test-'));
export const alipayPublicKeyFile = path.join(keyDir, 'alipay-public.pem');
writeFileSync(alipayPublicKeyFile, alipayKeys.publicKey.export({ type: 'spki', format: 'pem' }).toString());
export const merchantKeyFile = path.join(keyDir, 'merchant-private.pem');
writeFileSync(merchantKeyFile, merchantPrivatePem);

/** A fake Alipay with the tests' keys (so a test can sign as Alipay too). */
export function startTestFakeAlipay(): Promise<FakeAlipay> {
  return startFakeAlipay({
    appId: APP_ID,
    merchantPublicKey: merchantPublicPem,
    pid: SELLER_ID,
    alipayPrivateKey: alipayKeys.privateKey,
    notifyLadderMs: LADDER_MS,
  });
}

export interface AlipayLifecycle {
  stack: Stack;
  receiver: RunningReceiver;
  fake: FakeAlipay;
  control: FakeAlipayControl;
  gateway: AlipayPaymentGateway;
  /** An order created as a shop does it: its trade precreated at the fake, notify_url the receiver. */
  newOrder(
    request: Omit<CreateOrderRequest, 'currency'> & { ladderMs?: number },
  ): ReturnType<typeof createOrder>;
  orderRow(id: string): Promise<typeof orders.$inferSelect | undefined>;
  stop(): Promise<void>;
}

/** The Alipay lifecycle on the real services; `overrides` are the stack's configuration variables. */
export async function startAlipayLifecycle(
  name: string,
  overrides: Record<string, string> = {},
): Promise<AlipayLifecycle> {
  const fake = await startTestFakeAlipay();
  const control = new FakeAlipayControl(fake.url);
  const config = testConfig(name, {
    PAYMENT_PROVIDER: 'alipay',
    ALIPAY_APP_ID: APP_ID,
    ALIPAY_PRIVATE_KEY_FILE: merchantKeyFile,
    ALIPAY_PUBLIC_KEY_FILE: alipayPublicKeyFile,
    ALIPAY_ENDPOINT: fake.url,
    RECEIVER_PORT: '0',
    ...overrides,
  });
  const receiver = await startReceiver({ config, log: pino({ level: 'silent' }) });
  const gateway = new AlipayPaymentGateway({
    appId: APP_ID,
    privateKey: merchantPrivatePem,
    alipayPublicKey: fake.alipayPublicKey,
    endpoint: fake.url,
    notifyUrl: `${receiver.url}${ALIPAY_NOTIFY_PATH}`,
  });
  const stack = await startStack(config, { gateway });
  await receiver.publisher.waitForConnect();
  return {
    stack,
    receiver,
    fake,
    control,
    gateway,
    newOrder: ({ ladderMs = 3_600_000, ...request }) =>
      createOrder(
        { db: stack.db, client: stack.temporal, config: stack.config, gateway },
        {
          currency: 'CNY',
          payWithinMs: 3_600_000,
          pollLadder: { stepsMs: [ladderMs], repeatMs: ladderMs },
          ...request,
        },
      ),
    orderRow: async (id) => (await stack.db.select().from(orders).where(eq(orders.id, id)))[0],
    stop: async () => {
      await stack.stop();
      await receiver.close();
      await fake.close();
      await deleteTopology(stack.config);
    },
  };
}
