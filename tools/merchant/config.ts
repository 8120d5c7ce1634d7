import { z } from 'zod';
import { parseEnv } from '../../src/platform/config';
import { type AnswerFaults, orderFaultsSchema } from './faults';
import { secretListSchema } from './signature';

/**
 * Settings only the merchant simulator reads (DATABASE_URL, DATABASE_POOL_MAX and LOG_LEVEL are the
 * shared ones of src/platform/config.ts).
 *
 * - MERCHANT_PORT: the port to listen on (default 8091).
 * - MERCHANT_HOST: the address to listen on (default 127.0.0.1; 0.0.0.0 in a container).
 * - MERCHANT_SECRETS: the secrets of each merchant id at start-up, as JSON,
 *   `{"shop-1":["whsec_..."],"*":["whsec_..."]}` (`*`: any merchant id without its own).
 * - MERCHANT_FAULTS: the global fault knobs at start-up, as JSON, e.g. `{"failFirst":2}`.
 */

function json<S extends z.ZodType>(schema: S, example: string) {
  return z.string().transform((raw, ctx): z.infer<S> => {
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      ctx.addIssue({ code: 'custom', message: `must be JSON, e.g. ${example}` });
      return z.NEVER;
    }
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        ctx.addIssue({ code: 'custom', message: `${issue.path.join('.') || '(value)'}: ${issue.message}` });
      }
      return z.NEVER;
    }
    return parsed.data;
  });
}

export const merchantIdSchema = z
  .string()
  .regex(/^(\*|[A-Za-z0-9_.:-]{1,128})$/, 'merchant ids are 1-128 letters, digits, _ . : or - (or *)');

export const merchantSecretsSchema = z.record(merchantIdSchema, secretListSchema);
export type MerchantSecrets = z.infer<typeof merchantSecretsSchema>;

const merchantEnvSchema = z.object({
  MERCHANT_PORT: z.coerce.number().int().min(1).max(65_535).default(8091),
  MERCHANT_HOST: z.string().min(1).default('127.0.0.1'),
  MERCHANT_SECRETS: json(merchantSecretsSchema, '{"shop-1":["whsec_..."]}').default({}),
  MERCHANT_FAULTS: json(orderFaultsSchema, '{"failFirst":2}').default({}),
});

export interface MerchantConfig {
  port: number;
  host: string;
  secrets: MerchantSecrets;
  faults: AnswerFaults;
}

export function loadMerchantConfig(env: NodeJS.ProcessEnv = process.env): MerchantConfig {
  const parsed = parseEnv(merchantEnvSchema, env, 'merchant simulator configuration');
  return {
    port: parsed.MERCHANT_PORT,
    host: parsed.MERCHANT_HOST,
    secrets: parsed.MERCHANT_SECRETS,
    faults: parsed.MERCHANT_FAULTS,
  };
}
