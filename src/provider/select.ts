import type { PaymentProvider } from '../domain/order';
import { type Config, enabledProviders } from '../platform/config';
import { createAlipayGateway } from './alipay';
import type { PaymentGateway } from './gateway';
import { HttpPaymentGateway } from './http';
// Its SDK is loaded only when a WeChat Pay gateway is made (src/provider/wechatpay/gateway.ts).
import { loadWechatPayConfig, WechatPayGateway } from './wechatpay';

/**
 * An order names a provider that this process holds no gateway for (not in PAYMENT_PROVIDERS, or not a
 * provider at all). Asking again gets the same answer: the activities fail it for good.
 */
export class ProviderNotEnabledError extends Error {
  override name = 'ProviderNotEnabledError';
}

/**
 * One gateway per enabled provider; an order's calls go to the gateway of the order's own provider.
 * `single` is one gateway for every order, whatever its provider: what tests and the rig's one-provider
 * runs inject (createOrderWorker's `gateway`).
 */
export class PaymentGateways {
  private constructor(
    private readonly byProvider: ReadonlyMap<string, PaymentGateway>,
    /** The provider of new orders (PAYMENT_PROVIDER). */
    readonly defaultProvider: PaymentProvider,
    private readonly fallback: PaymentGateway | null,
  ) {}

  static of(gateways: Partial<Record<PaymentProvider, PaymentGateway>>, defaultProvider: PaymentProvider) {
    if (!gateways[defaultProvider]) {
      throw new ProviderNotEnabledError(`the default provider ${defaultProvider} has no gateway`);
    }
    return new PaymentGateways(new Map(Object.entries(gateways)), defaultProvider, null);
  }

  static single(gateway: PaymentGateway, defaultProvider: PaymentProvider = 'simulator') {
    return new PaymentGateways(new Map([[defaultProvider, gateway]]), defaultProvider, gateway);
  }

  /** False for `single`: every provider's order goes to its one gateway, so no order needs a lookup. */
  get perProvider(): boolean {
    return this.fallback === null;
  }

  get enabled(): string[] {
    return [...this.byProvider.keys()];
  }

  /** The gateway of `provider`; ProviderNotEnabledError names it when this process has none. */
  get(provider: string): PaymentGateway {
    const gateway = this.byProvider.get(provider) ?? this.fallback;
    if (!gateway) {
      throw new ProviderNotEnabledError(
        `payment provider ${JSON.stringify(provider)} is not enabled here (PAYMENT_PROVIDERS: ${this.enabled.join(', ')})`,
      );
    }
    return gateway;
  }
}

/** A registry as is; one gateway as the one for every order (PaymentGateways.single). */
export function asGateways(gateway: PaymentGateway | PaymentGateways): PaymentGateways {
  return gateway instanceof PaymentGateways ? gateway : PaymentGateways.single(gateway);
}

/** The gateway of one provider, from its configuration (loadConfig has checked it). */
function createGateway(config: Config, provider: PaymentProvider, env: NodeJS.ProcessEnv): PaymentGateway {
  switch (provider) {
    case 'alipay':
      return createAlipayGateway(config);
    case 'wechatpay':
      return new WechatPayGateway(loadWechatPayConfig(env));
    case 'simulator':
      return new HttpPaymentGateway({ baseUrl: config.PROVIDER_URL });
  }
}

/** A gateway for each provider PAYMENT_PROVIDERS enables (PAYMENT_PROVIDER alone when unset). */
export function createPaymentGateways(config: Config, env: NodeJS.ProcessEnv = process.env): PaymentGateways {
  const gateways: Partial<Record<PaymentProvider, PaymentGateway>> = {};
  for (const provider of enabledProviders(config)) gateways[provider] = createGateway(config, provider, env);
  return PaymentGateways.of(gateways, config.PAYMENT_PROVIDER);
}

/** The gateway of PAYMENT_PROVIDER, the provider of new orders. */
export function createPaymentGateway(config: Config, env: NodeJS.ProcessEnv = process.env): PaymentGateway {
  return createGateway(config, config.PAYMENT_PROVIDER, env);
}
