import { z } from 'zod';
import { parseEnv } from '../../src/platform/config';
import { type GlobalFaults, globalFaultsSchema } from './faults';

/**
 * Settings only the payment simulator reads (the shared ones, SIMULATOR_PORT included, are in
 * src/platform/config.ts).
 *
 * - SIMULATOR_HOST: the address to listen on (default 127.0.0.1; 0.0.0.0 in a container).
 * - SIMULATOR_FAULTS: the global fault knobs at start-up, as JSON, e.g. `{"dropRate":0.3,"delayRate":0.2}`.
 */
const simulatorEnvSchema = z.object({
  SIMULATOR_HOST: z.string().min(1).default('127.0.0.1'),
  SIMULATOR_FAULTS: z
    .string()
    .default('{}')
    .transform((raw, ctx) => {
      let json: unknown;
      try {
        json = JSON.parse(raw);
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be a JSON object, e.g. {"dropRate":0.3}' });
        return z.NEVER;
      }
      const parsed = globalFaultsSchema.safeParse(json);
      if (!parsed.success) {
        for (const issue of parsed.error.issues) {
          ctx.addIssue({ code: 'custom', message: `${issue.path.join('.') || '(value)'}: ${issue.message}` });
        }
        return z.NEVER;
      }
      return parsed.data;
    }),
});

export interface SimulatorConfig {
  host: string;
  faults: GlobalFaults;
}

export function loadSimulatorConfig(env: NodeJS.ProcessEnv = process.env): SimulatorConfig {
  const parsed = parseEnv(simulatorEnvSchema, env, 'simulator configuration');
  return { host: parsed.SIMULATOR_HOST, faults: parsed.SIMULATOR_FAULTS };
}
