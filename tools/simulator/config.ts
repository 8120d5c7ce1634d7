import ms from 'ms';
import { z } from 'zod';
import { parseEnv } from '../../src/platform/config';
import { type BillSettings, DEFAULT_BILL_SETTINGS } from './bill-routes';
import { type GlobalFaults, globalFaultsSchema } from './faults';

/**
 * Settings only the payment simulator reads (the shared ones, SIMULATOR_PORT included, are in
 * src/platform/config.ts).
 *
 * - SIMULATOR_HOST: the address to listen on (default 127.0.0.1; 0.0.0.0 in a container).
 * - SIMULATOR_FAULTS: the global fault knobs at start-up, as JSON, e.g. `{"dropRate":0.3,"delayRate":0.2}`.
 * - SIMULATOR_BILL_URL_TTL: how long a trade statement's download URL lives (default 30s; `5s`, `1500`).
 * - SIMULATOR_BILL_ENCODING: utf-8 (default) or gbk; SIMULATOR_BILL_ZIPPED: true or false (default).
 *   A day's bill faults can say otherwise (tools/simulator/bill-faults.ts).
 */

const MAX_BILL_URL_TTL_MS = 24 * 3_600_000;

const billUrlTtl = z.string().transform((raw, ctx) => {
  const trimmed = raw.trim();
  const value = /^\d+$/.test(trimmed) ? Number(trimmed) : ms(trimmed as ms.StringValue);
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 1 || value > MAX_BILL_URL_TTL_MS) {
    ctx.addIssue({
      code: 'custom',
      message: `"${raw}" is not a duration from 1ms to 24h (examples: 30s, 5m, 1500)`,
    });
    return z.NEVER;
  }
  return Math.round(value);
});

const flag = z
  .enum(['true', 'false', '1', '0'], 'must be true or false')
  .transform((raw) => raw === 'true' || raw === '1');
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
  SIMULATOR_BILL_URL_TTL: billUrlTtl.default(DEFAULT_BILL_SETTINGS.urlTtlMs),
  SIMULATOR_BILL_ENCODING: z.enum(['utf-8', 'gbk'], 'must be utf-8 or gbk').default('utf-8'),
  SIMULATOR_BILL_ZIPPED: flag.default(false),
});

export interface SimulatorConfig {
  host: string;
  faults: GlobalFaults;
  bills: BillSettings;
}

export function loadSimulatorConfig(env: NodeJS.ProcessEnv = process.env): SimulatorConfig {
  const parsed = parseEnv(simulatorEnvSchema, env, 'simulator configuration');
  return {
    host: parsed.SIMULATOR_HOST,
    faults: parsed.SIMULATOR_FAULTS,
    bills: {
      urlTtlMs: parsed.SIMULATOR_BILL_URL_TTL,
      format: { encoding: parsed.SIMULATOR_BILL_ENCODING, zipped: parsed.SIMULATOR_BILL_ZIPPED },
    },
  };
}
