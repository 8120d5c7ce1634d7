import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type Config, ConfigError } from '../../platform/config';
import { AlipayPaymentGateway } from './gateway';
import { AlipayNotificationReader } from './notify';

export { AlipayPaymentGateway } from './gateway';
export { type AlipayNotification, AlipayNotificationReader } from './notify';
export { fenToYuan, yuanToFen } from './yuan';

/**
 * The Alipay gateway from the configuration (loadConfig has checked every variable is there). Keys are
 * read from their files and checked now, so a bad key stops the process at start; no message names more
 * than the variable and the file.
 */
export function createAlipayGateway(
  config: Pick<
    Config,
    | 'ALIPAY_APP_ID'
    | 'ALIPAY_PRIVATE_KEY_FILE'
    | 'ALIPAY_PUBLIC_KEY_FILE'
    | 'ALIPAY_ENDPOINT'
    | 'PAY_DEADLINE'
    | 'ALIPAY_NOTIFY_URL'
  >,
): AlipayPaymentGateway {
  const { ALIPAY_APP_ID, ALIPAY_PRIVATE_KEY_FILE, ALIPAY_PUBLIC_KEY_FILE } = config;
  if (!ALIPAY_APP_ID || !ALIPAY_PRIVATE_KEY_FILE || !ALIPAY_PUBLIC_KEY_FILE) {
    throw new ConfigError(
      'PAYMENT_PROVIDER=alipay needs ALIPAY_APP_ID, ALIPAY_PRIVATE_KEY_FILE and ALIPAY_PUBLIC_KEY_FILE',
    );
  }
  const privateKey = readKey('ALIPAY_PRIVATE_KEY_FILE', ALIPAY_PRIVATE_KEY_FILE, 'private');
  const publicKey = readKey('ALIPAY_PUBLIC_KEY_FILE', ALIPAY_PUBLIC_KEY_FILE, 'public');
  return new AlipayPaymentGateway({
    appId: ALIPAY_APP_ID,
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    alipayPublicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    endpoint: config.ALIPAY_ENDPOINT,
    payDeadlineMs: config.PAY_DEADLINE,
    notifyUrl: config.ALIPAY_NOTIFY_URL,
  });
}

/**
 * The notification receiver's reader, when the receiver is configured for Alipay (ALIPAY_APP_ID and
 * ALIPAY_PUBLIC_KEY_FILE; the app's private key is not needed and not read); undefined when neither is set.
 */
export function createAlipayNotificationReader(
  config: Pick<Config, 'ALIPAY_APP_ID' | 'ALIPAY_PUBLIC_KEY_FILE' | 'ALIPAY_SELLER_ID'>,
): AlipayNotificationReader | undefined {
  const { ALIPAY_APP_ID, ALIPAY_PUBLIC_KEY_FILE } = config;
  if (!ALIPAY_APP_ID && !ALIPAY_PUBLIC_KEY_FILE) return undefined;
  if (!ALIPAY_APP_ID || !ALIPAY_PUBLIC_KEY_FILE) {
    const missing = ALIPAY_APP_ID ? 'ALIPAY_PUBLIC_KEY_FILE' : 'ALIPAY_APP_ID';
    throw new ConfigError(
      `Alipay notifications need ALIPAY_APP_ID and ALIPAY_PUBLIC_KEY_FILE: ${missing} is unset`,
    );
  }
  const publicKey = readKey('ALIPAY_PUBLIC_KEY_FILE', ALIPAY_PUBLIC_KEY_FILE, 'public');
  return new AlipayNotificationReader({
    appId: ALIPAY_APP_ID,
    alipayPublicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    sellerId: config.ALIPAY_SELLER_ID,
  });
}

/**
 * An RSA key as Alipay's key tool or the open platform hands it out: PEM (PKCS#1, PKCS#8, SPKI) or the
 * bare base64 of its DER, which is what the platform's "copy key" button gives.
 */
function readKey(variable: string, path: string, kind: 'private' | 'public'): KeyObject {
  const text = readFileSync(path, 'utf8').trim();
  // Node would derive a public key from a private one: a swapped file must fail here, not on every reply.
  if (kind === 'public' && text.includes('PRIVATE KEY')) {
    throw new ConfigError(`${variable}=${path}: the file holds a private key, not Alipay's public key`);
  }
  const der = () => Buffer.from(text.replace(/\s+/g, ''), 'base64');
  const attempts: (() => KeyObject)[] = text.startsWith('-----BEGIN')
    ? [() => (kind === 'private' ? createPrivateKey(text) : createPublicKey(text))]
    : kind === 'private'
      ? [
          () => createPrivateKey({ key: der(), format: 'der', type: 'pkcs8' }),
          () => createPrivateKey({ key: der(), format: 'der', type: 'pkcs1' }),
        ]
      : [
          () => createPublicKey({ key: der(), format: 'der', type: 'spki' }),
          () => createPublicKey({ key: der(), format: 'der', type: 'pkcs1' }),
        ];
  for (const attempt of attempts) {
    try {
      const key = attempt();
      if (key.asymmetricKeyType === 'rsa') return key;
    } catch {
      // the next format, if any
    }
  }
  throw new ConfigError(`${variable}=${path}: the file does not hold an RSA ${kind} key (PEM or base64 DER)`);
}
