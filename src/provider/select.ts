import type { Config } from '../platform/config';
import { createAlipayGateway } from './alipay';
import type { PaymentGateway } from './gateway';
import { HttpPaymentGateway } from './http';

/** The gateway PAYMENT_PROVIDER names: the simulator's HTTP API (the default) or Alipay. */
export function createPaymentGateway(config: Config): PaymentGateway {
  return config.PAYMENT_PROVIDER === 'alipay'
    ? createAlipayGateway(config)
    : new HttpPaymentGateway({ baseUrl: config.PROVIDER_URL });
}
