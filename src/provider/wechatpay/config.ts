import { createPrivateKey, createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError, parseEnv } from '../../platform/config';

/**
 * The WeChat Pay merchant's settings, from the environment and the key files it names. Standalone (not
 * in the platform config) so that a shop without WeChat Pay never needs them: the worker's
 * PAYMENT_PROVIDER switch calls loadWechatPayConfig only when it selects WeChat Pay.
 *
 * Every error names the variable and what is wrong; none prints a key, a path that names one, or any
 * byte of a file's content.
 */

export const DEFAULT_WECHATPAY_ENDPOINT = 'https://api.mch.weixin.qq.com';

const readablePath = z.string().min(1);

const wechatPayEnvSchema = z.object({
  /** 商户号: the merchant id, digits. */
  WECHATPAY_MCH_ID: z.string().regex(/^\d{6,32}$/, 'must be the merchant id (商户号), digits only'),
  /** The AppID the Native orders are made for (公众号/小程序/应用 AppID bound to the merchant). */
  WECHATPAY_APP_ID: z.string().regex(/^[A-Za-z0-9_]{4,32}$/, 'must be the AppID bound to the merchant (wx…)'),
  /** The merchant API certificate's serial number (商户API证书序列号), hexadecimal. */
  WECHATPAY_MCH_CERT_SERIAL: z
    .string()
    .regex(/^[0-9A-Fa-f]{8,64}$/, 'must be the merchant API certificate serial number (hexadecimal)'),
  /** apiclient_key.pem: the merchant API private key every request is signed with. */
  WECHATPAY_MCH_PRIVATE_KEY_FILE: readablePath,
  /** The WeChat Pay public key (微信支付公钥) every reply's signature is checked with. */
  WECHATPAY_PUBLIC_KEY_FILE: readablePath,
  /** Its id, as WeChat Pay names it in Wechatpay-Serial. */
  WECHATPAY_PUBLIC_KEY_ID: z
    .string()
    .regex(/^PUB_KEY_ID_[0-9A-Za-z]+$/, 'must be the WeChat Pay public key id (PUB_KEY_ID_…)'),
  /** The APIv3 key (32 characters) notifications are decrypted with. */
  WECHATPAY_APIV3_KEY_FILE: readablePath,
  /** Where notifications go (notify_url of every order and refund): https at WeChat Pay. */
  WECHATPAY_NOTIFY_URL: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
  WECHATPAY_ENDPOINT: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
    .default(DEFAULT_WECHATPAY_ENDPOINT),
});

export interface WechatPayConfig {
  mchId: string;
  appId: string;
  merchantCertSerial: string;
  merchantPrivateKey: KeyObject;
  wechatpayPublicKey: KeyObject;
  wechatpayPublicKeyId: string;
  /** For the notification receiver (AEAD_AES_256_GCM); a KeyObject, so a logged config shows no byte of it. */
  apiV3Key: KeyObject;
  notifyUrl: string;
  /** Origin and optional path prefix, without a trailing slash. */
  endpoint: string;
}

export function loadWechatPayConfig(env: NodeJS.ProcessEnv = process.env): WechatPayConfig {
  const raw = parseEnv(wechatPayEnvSchema, env, 'WeChat Pay configuration');
  const keys = new KeyFiles(raw);
  const privateKey = keys.rsa(
    'WECHATPAY_MCH_PRIVATE_KEY_FILE',
    createPrivateKey,
    'an RSA private key in PEM (apiclient_key.pem)',
  );
  const publicKey = keys.rsa('WECHATPAY_PUBLIC_KEY_FILE', createPublicKey, PUBLIC_KEY_EXPECTED);
  const apiV3Key = keys.apiV3Key();
  if (keys.problems.length > 0 || !privateKey || !publicKey || !apiV3Key) {
    throw new ConfigError(
      `invalid WeChat Pay configuration in the environment:\n${keys.problems.join('\n')}`,
    );
  }
  return {
    mchId: raw.WECHATPAY_MCH_ID,
    appId: raw.WECHATPAY_APP_ID,
    merchantCertSerial: raw.WECHATPAY_MCH_CERT_SERIAL.toUpperCase(),
    merchantPrivateKey: privateKey,
    wechatpayPublicKey: publicKey,
    wechatpayPublicKeyId: raw.WECHATPAY_PUBLIC_KEY_ID,
    apiV3Key,
    notifyUrl: raw.WECHATPAY_NOTIFY_URL,
    endpoint: raw.WECHATPAY_ENDPOINT.replace(/\/+$/, ''),
  };
}

/** What the notification receiver needs of WeChat Pay: no merchant private key, no certificate serial. */
export type WechatPayNotifyConfig = Pick<
  WechatPayConfig,
  'mchId' | 'appId' | 'wechatpayPublicKey' | 'wechatpayPublicKeyId' | 'apiV3Key'
>;

const wechatPayNotifyEnvSchema = wechatPayEnvSchema.pick({
  WECHATPAY_MCH_ID: true,
  WECHATPAY_APP_ID: true,
  WECHATPAY_PUBLIC_KEY_FILE: true,
  WECHATPAY_PUBLIC_KEY_ID: true,
  WECHATPAY_APIV3_KEY_FILE: true,
});

/**
 * The receiver's settings: it faces the internet, so it reads neither WECHATPAY_MCH_PRIVATE_KEY_FILE
 * nor anything else it does not verify or decrypt with.
 */
export function loadWechatPayNotifyConfig(env: NodeJS.ProcessEnv = process.env): WechatPayNotifyConfig {
  const raw = parseEnv(wechatPayNotifyEnvSchema, env, 'WeChat Pay notification configuration');
  const keys = new KeyFiles(raw);
  const publicKey = keys.rsa('WECHATPAY_PUBLIC_KEY_FILE', createPublicKey, PUBLIC_KEY_EXPECTED);
  const apiV3Key = keys.apiV3Key();
  if (keys.problems.length > 0 || !publicKey || !apiV3Key) {
    throw new ConfigError(
      `invalid WeChat Pay notification configuration in the environment:\n${keys.problems.join('\n')}`,
    );
  }
  return {
    mchId: raw.WECHATPAY_MCH_ID,
    appId: raw.WECHATPAY_APP_ID,
    wechatpayPublicKey: publicKey,
    wechatpayPublicKeyId: raw.WECHATPAY_PUBLIC_KEY_ID,
    apiV3Key,
  };
}

const PUBLIC_KEY_EXPECTED = 'an RSA public key in PEM (pub_key.pem from the merchant platform)';

type KeyFileName =
  | 'WECHATPAY_MCH_PRIVATE_KEY_FILE'
  | 'WECHATPAY_PUBLIC_KEY_FILE'
  | 'WECHATPAY_APIV3_KEY_FILE';

/** Reads the key files a schema named, collecting one problem line per file that is wrong. */
class KeyFiles {
  readonly problems: string[] = [];

  constructor(private readonly paths: Partial<Record<KeyFileName, string>>) {}

  private read(name: KeyFileName): Buffer | null {
    try {
      return readFileSync(this.paths[name] ?? '');
    } catch (error) {
      // The errno code only (ENOENT, EACCES…): the message would repeat the path.
      this.problems.push(
        `  ${name}: the file cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      );
      return null;
    }
  }

  /** WeChat Pay APIv3 signs with RSA (WECHATPAY2-SHA256-RSA2048): any other key type cannot be used. */
  rsa(name: KeyFileName, parse: (pem: Buffer) => KeyObject, expected: string): KeyObject | null {
    const pem = this.read(name);
    if (!pem) return null;
    try {
      const object = parse(pem);
      if (object.asymmetricKeyType !== 'rsa') throw new Error('not RSA');
      return object;
    } catch {
      // Node's parse error can quote the input: say only what was expected.
      this.problems.push(`  ${name}: the file does not hold ${expected}`);
      return null;
    }
  }

  apiV3Key(): KeyObject | null {
    const file = this.read('WECHATPAY_APIV3_KEY_FILE');
    if (!file) return null;
    // An editor's trailing newline is not part of the key.
    const trimmed = file.toString('utf8').trim();
    if (Buffer.byteLength(trimmed) !== 32) {
      this.problems.push(
        `  WECHATPAY_APIV3_KEY_FILE: the APIv3 key must be 32 bytes, the file holds ${Buffer.byteLength(trimmed)}`,
      );
      return null;
    }
    return createSecretKey(Buffer.from(trimmed, 'utf8'));
  }
}
