import { JsonHttpClient, ServiceHttpError, ServiceUnreachableError } from '../lib/client';
import type { GlobalFaultsInput, GlobalFaultsView, OrderFaults } from './faults';
import {
  type RunningMerchantSimulator,
  type StartMerchantSimulatorOptions,
  startMerchantSimulator,
} from './server';
import type { DeliveryFilter, DeliveryView } from './store';

export { newWebhookSecret } from './signature';
export type { DeliveryFilter, DeliveryView, GlobalFaultsInput, GlobalFaultsView, OrderFaults };

/**
 * The one client of the merchant simulator's HTTP API (./routes.ts), for everything in the rig that
 * plays the merchant: the demo, the chaos run and the tests. payrecon itself never uses it: it only
 * POSTs its notifications to the URL of a merchant endpoint, which in the rig is `hookUrl(merchantId)`.
 */

/** Nothing answered at the merchant simulator's URL (not started, refusing connections, timed out). */
export class MerchantUnreachableError extends ServiceUnreachableError {
  override name = 'MerchantUnreachableError';
}

/** The merchant simulator answered with an HTTP error; `body` is its JSON (`{ error }`). */
export class MerchantHttpError extends ServiceHttpError {
  override name = 'MerchantHttpError';
}

export interface MerchantHealth {
  status: 'ok' | 'degraded';
  database: 'up' | 'down';
}

/**
 * The merchant simulator's URL from the environment: MERCHANT_URL, else http://MERCHANT_HOST:MERCHANT_PORT
 * (127.0.0.1:8091 by default; a MERCHANT_HOST of 0.0.0.0 or :: is reached on 127.0.0.1).
 */
export function merchantUrlFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MERCHANT_URL) return env.MERCHANT_URL.replace(/\/$/, '');
  const rawHost = env.MERCHANT_HOST || '127.0.0.1';
  const host = rawHost === '0.0.0.0' || rawHost === '::' ? '127.0.0.1' : rawHost;
  return `http://${host.includes(':') ? `[${host}]` : host}:${env.MERCHANT_PORT || '8091'}`;
}

/** Where payrecon should deliver a merchant's notifications: `<simulator URL>/hooks/<merchantId>`. */
export function hookUrl(baseUrl: string, merchantId: string): string {
  return `${baseUrl.replace(/\/$/, '')}/hooks/${encodeURIComponent(merchantId)}`;
}

export class MerchantClient extends JsonHttpClient<'GET' | 'PUT' | 'PATCH', MerchantHealth> {
  constructor(url: string = merchantUrlFromEnv(), options: { timeoutMs?: number } = {}) {
    super(
      url,
      {
        name: 'the merchant simulator',
        startWith: 'npm run merchant',
        unreachable: MerchantUnreachableError,
        httpError: MerchantHttpError,
      },
      options,
    );
  }

  /** The endpoint URL of `merchantId` on this simulator. */
  hookUrl(merchantId: string): string {
    return hookUrl(this.url, merchantId);
  }

  /** Replaces the secrets the simulator verifies `merchantId`'s deliveries with (`*`: any id without its own). */
  setSecrets(merchantId: string, secrets: string[]): Promise<{ merchantId: string; secrets: number }> {
    return this.ok('PUT', `/merchants/${encodeURIComponent(merchantId)}`, { secrets });
  }

  getFaults(): Promise<GlobalFaultsView> {
    return this.ok('GET', '/faults');
  }

  /**
   * Global knobs: `replace` (PUT) resets every knob not given, `merge` (PATCH) changes only the ones
   * given. `refuseForMs` closes the listening socket right after this call is answered.
   */
  setFaults(faults: GlobalFaultsInput, mode: 'replace' | 'merge' = 'replace'): Promise<GlobalFaultsView> {
    return this.ok(mode === 'replace' ? 'PUT' : 'PATCH', '/faults', faults);
  }

  /** Refuses every connection for `ms` (the other knobs stay), then listens again on the same port. */
  refuseConnections(ms: number): Promise<GlobalFaultsView> {
    return this.setFaults({ refuseForMs: ms }, 'merge');
  }

  /** Replaces the order's knobs (`{}` clears them); they win over the global ones, knob by knob. */
  setOrderFaults(orderId: string, faults: OrderFaults): Promise<{ orderId: string; faults: OrderFaults }> {
    return this.ok('PUT', `/orders/${encodeURIComponent(orderId)}/faults`, faults);
  }

  getOrderFaults(orderId: string): Promise<{ orderId: string; faults: OrderFaults }> {
    return this.ok('GET', `/orders/${encodeURIComponent(orderId)}/faults`);
  }

  /** Every delivery attempt matching the filter, in arrival order (bad signatures and timeouts included). */
  async deliveries(filter: DeliveryFilter = {}): Promise<DeliveryView[]> {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(filter)) if (value !== undefined) query.set(key, value);
    const suffix = query.toString() ? `?${query}` : '';
    return (await this.ok<{ deliveries: DeliveryView[] }>('GET', `/deliveries${suffix}`)).deliveries;
  }
}

/** An in-process simulator (port 0 by default: a free one) and its client; for tests. */
export async function startMerchant(
  options: StartMerchantSimulatorOptions,
): Promise<{ simulator: RunningMerchantSimulator; client: MerchantClient }> {
  const simulator = await startMerchantSimulator({ port: 0, ...options });
  return { simulator, client: new MerchantClient(simulator.url) };
}

/**
 * The at-least-once checks issue 11's tests make on what a merchant saw, as one pure function over
 * `deliveries()`: each of `webhookIds` arrived validly signed and was acknowledged, every copy of one id
 * carried the same event (order, type, sequence), and per order no delivery of sequence s came before
 * the first acknowledgement of an earlier sequence (an earlier event never acknowledged, e.g. exhausted,
 * is not held against the later ones). Problems are listed as text.
 */
export function checkDeliveries(
  deliveries: DeliveryView[],
  expected: { webhookIds: string[] },
): { ok: boolean; problems: string[] } {
  const problems: string[] = [];
  const valid = deliveries.filter((delivery) => delivery.signatureValid).sort((a, b) => a.id - b.id);
  for (const id of expected.webhookIds) {
    const copies = valid.filter((delivery) => delivery.webhookId === id);
    if (copies.length === 0) problems.push(`event ${id} never arrived validly signed`);
    else if (!copies.some((delivery) => delivery.acknowledged))
      problems.push(`event ${id} was never acknowledged`);
    const shapes = new Set(
      copies.map((delivery) => `${delivery.orderId}/${delivery.eventType}/${delivery.sequence}`),
    );
    if (shapes.size > 1) problems.push(`event ${id} arrived as different events: ${[...shapes].join(', ')}`);
  }
  /** Per order: sequence -> id of the delivery that first acknowledged it. */
  const firstAck = new Map<string, Map<number, number>>();
  for (const delivery of valid) {
    if (delivery.orderId === null || delivery.sequence === null || !delivery.acknowledged) continue;
    const acks = firstAck.get(delivery.orderId) ?? new Map<number, number>();
    if (!acks.has(delivery.sequence)) acks.set(delivery.sequence, delivery.id);
    firstAck.set(delivery.orderId, acks);
  }
  for (const delivery of valid) {
    if (delivery.orderId === null || delivery.sequence === null) continue;
    for (const [sequence, ackedBy] of firstAck.get(delivery.orderId) ?? []) {
      if (sequence < delivery.sequence && ackedBy > delivery.id) {
        problems.push(
          `order ${delivery.orderId}: sequence ${delivery.sequence} (event ${delivery.webhookId}, delivery ${delivery.id}) arrived before sequence ${sequence} was acknowledged (delivery ${ackedBy})`,
        );
      }
    }
  }
  return { ok: problems.length === 0, problems };
}
