import net from 'node:net';
import type { Config } from '../../../src/platform/config';
import type { TradeFaults } from '../../simulator/faults';
import { configEnv, sleep } from './env';
import { BenchProcess } from './procs';

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * The payment simulator as its own process (it stands in for an external provider, so its CPU is not
 * payrecon's), logging at warn: one info line per request would be the provider's cost, not ours.
 */
export async function startSimulatorProcess(config: Config): Promise<{ url: string; process: BenchProcess }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = new BenchProcess(
    `simulator-${config.AMQP_PREFIX}`,
    'tools/simulator/server.ts',
    configEnv(config, { SIMULATOR_PORT: String(port), LOG_LEVEL: 'warn', SIMULATOR_FAULTS: '{}' }),
  );
  const until = Date.now() + 30_000;
  let failure: unknown;
  child.exited.then(() => {
    failure ??= new Error(`the simulator exited (log: .run/bench-${child.name}.log)`);
  });
  while (Date.now() < until && !failure) {
    try {
      if ((await fetch(`${url}/health`)).ok) return { url, process: child };
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  await child.stop();
  throw failure ?? new Error(`the simulator did not answer at ${url} within 30s`);
}

async function call(url: string, method: string, route: string, body?: unknown): Promise<unknown> {
  const response = await fetch(`${url}${route}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    throw new Error(`simulator ${method} ${route}: HTTP ${response.status} ${await response.text()}`);
  }
  return response.json();
}

export function createTrade(url: string, order: { id: string; amount: number; currency: string }) {
  return call(url, 'POST', '/trades', { orderId: order.id, amount: order.amount, currency: order.currency });
}

/** The buyer pays; resolves once the simulator has published the notification with a broker confirm. */
export function payTrade(url: string, orderId: string, faults?: TradeFaults) {
  return call(url, 'POST', `/trades/${encodeURIComponent(orderId)}/pay`, faults ? { faults } : {});
}
