import { ownSchemaDrizzleConfig } from '../lib/drizzle';

/**
 * The merchant simulator's own migrations (schema `merchant` only), apart from payrecon's
 * (drizzle.config.ts) and the payment simulator's: `npm run merchant:db:generate` after changing
 * tools/merchant/db/schema.ts. Applied by tools/merchant/db/migrate.ts, which tracks them in
 * merchant.__drizzle_migrations.
 */
export default ownSchemaDrizzleConfig('merchant', 'merchant');
