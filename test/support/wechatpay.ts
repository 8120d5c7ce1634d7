import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import pino from 'pino';
import { orders } from '../../src/db/schema';
import { type CreateOrderRequest, createOrder } from '../../src/order/start';
import { loadWechatPayConfig, WechatPayGateway } from '../../src/provider/wechatpay';
import { WECHATPAY_NOTIFY_PATH } from '../../src/receiver/app';
import { type RunningReceiver, startReceiver } from '../../src/receiver/start';
import {
  type FakeWechatPay,
  FakeWechatPayControl,
  startFakeWechatPay,
} from '../../tools/providers/wechatpay/server';
import { deleteTopology, testConfig } from './env';
import { type Stack, startStack } from './stack';

/**
 * WeChat Pay in the tests: the merchant's identity and keys, WeChat Pay's key pair (so a test can sign
 * as WeChat), their files, and the lifecycle on the real services with PAYMENT_PROVIDER=wechatpay: the
 * fake WeChat Pay, the notification receiver, and a stack (worker on the dev server, consumer, Postgres)
 * whose gateway is the WeChat Pay adapter.
 */

export const MCH_ID = '1900000109';
export const APP_ID = 'wxd678efh567hg6787';
export const SERIAL = '5157F09EFDC096DE15EBE81A47057A7232F1B8E1';
export const APIV3_KEY = 'a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb';
export const wechatKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
export const merchant = generateKeyPairSync('rsa', { modulusLength: 2048 });
/** Short enough that the ladder's first attempts run in a test (16 attempts in all at WeChat). */
export const LADDER_MS = [100, 150, 150, 200, 200, 250, 250, 250, 250, 300, 300, 300, 300, 300, 300];

const dir = mkdtempSync(path.join(tmpdir(), 'payrecon-wechatpay-test-'));
const write = (name: string, content: string) => {
  const file = path.join(dir, name);
  writeFileSync(file, content);
  return file;
};
const wechatPublicKeyFile = write(
  'pub_key.pem',
  wechatKeys.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
);
const apiV3KeyFile = write('apiv3.key', `${APIV3_KEY}\n`);
export const merchantKeyFile = write(
  'apiclient_key.pem',
  merchant.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
);

/** What the receiver reads: no WECHATPAY_MCH_PRIVATE_KEY_FILE, no certificate serial. */
export function receiverEnvFor(publicKeyId: string) {
  return {
    PAYMENT_PROVIDER: 'wechatpay',
    WECHATPAY_MCH_ID: MCH_ID,
    WECHATPAY_APP_ID: APP_ID,
    WECHATPAY_PUBLIC_KEY_FILE: wechatPublicKeyFile,
    WECHATPAY_PUBLIC_KEY_ID: publicKeyId,
    WECHATPAY_APIV3_KEY_FILE: apiV3KeyFile,
  };
}

/** A fake WeChat Pay with the tests' keys, notifying on the shortened ladder. */
export function startTestFakeWechatPay(): Promise<FakeWechatPay> {
  return startFakeWechatPay({
    mchId: MCH_ID,
    appId: APP_ID,
    merchantCertSerial: SERIAL,
    merchantPublicKey: merchant.publicKey,
    wechatpayKeys: wechatKeys,
    apiV3Key: APIV3_KEY,
    notifyLadderMs: LADDER_MS,
  });
}

export interface WechatPayLifecycle {
  stack: Stack;
  receiver: RunningReceiver;
  fake: FakeWechatPay;
  control: FakeWechatPayControl;
  gateway: WechatPayGateway;
  /** An order created as a shop does it: its Native order opened at the fake, notify_url the receiver. */
  newOrder(
    request: Omit<CreateOrderRequest, 'currency'> & { ladderMs?: number },
  ): ReturnType<typeof createOrder>;
  orderRow(id: string): Promise<typeof orders.$inferSelect | undefined>;
  stop(): Promise<void>;
}

/** The WeChat Pay lifecycle on the real services; `overrides` are the stack's configuration variables. */
export async function startWechatPayLifecycle(
  name: string,
  overrides: Record<string, string> = {},
): Promise<WechatPayLifecycle> {
  const fake = await startTestFakeWechatPay();
  const env = receiverEnvFor(fake.publicKeyId);
  const full = {
    ...env,
    WECHATPAY_MCH_CERT_SERIAL: SERIAL,
    WECHATPAY_MCH_PRIVATE_KEY_FILE: merchantKeyFile,
    WECHATPAY_ENDPOINT: fake.url,
    WECHATPAY_NOTIFY_URL: 'http://127.0.0.1:1/notify/wechatpay',
  };
  const config = testConfig(name, { ...full, RECEIVER_PORT: '0', ...overrides });
  const receiver = await startReceiver({ config, log: pino({ level: 'silent' }), env });
  const gateway = new WechatPayGateway(
    loadWechatPayConfig({ ...full, WECHATPAY_NOTIFY_URL: `${receiver.url}${WECHATPAY_NOTIFY_PATH}` }),
    { timeoutMs: 2_000 },
  );
  const stack = await startStack(config, { gateway });
  await receiver.publisher.waitForConnect();
  return {
    stack,
    receiver,
    fake,
    control: new FakeWechatPayControl(fake.url),
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
