import type { Config } from '../../../src/platform/config';
import { freePort } from '../../net';
import { SimulatorClient } from '../../simulator/client';
import { configEnv } from './env';
import { BenchProcess } from './procs';

/**
 * The payment simulator as its own process (it stands in for an external provider, so its CPU is not
 * payrecon's), logging at warn: one info line per request would be the provider's cost, not ours.
 */
export async function startSimulatorProcess(
  config: Config,
  options: { name?: string } = {},
): Promise<{ client: SimulatorClient; process: BenchProcess }> {
  const port = await freePort();
  const client = new SimulatorClient(`http://127.0.0.1:${port}`);
  const child = new BenchProcess(
    options.name ?? `simulator-${config.AMQP_PREFIX}`,
    'tools/simulator/server.ts',
    configEnv(config, { SIMULATOR_PORT: String(port), LOG_LEVEL: 'warn', SIMULATOR_FAULTS: '{}' }),
  );
  const exited = new AbortController();
  child.exited.then(() =>
    exited.abort(new Error(`the simulator exited (log: .run/bench-${child.name}.log)`)),
  );
  try {
    await client.waitUntilUp(30_000, exited.signal);
  } catch (error) {
    await child.stop();
    throw error;
  }
  return { client, process: child };
}
