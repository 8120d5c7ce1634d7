import { ownSchemaDrizzleConfig } from '../lib/drizzle';

/**
 * The simulator's own migrations (schema `provider` only), apart from payrecon's (drizzle.config.ts):
 * `npm run sim:db:generate` after changing tools/simulator/db/schema.ts. Applied by
 * tools/simulator/db/migrate.ts, which tracks them in provider.__drizzle_migrations.
 */
export default ownSchemaDrizzleConfig('simulator', 'provider');
