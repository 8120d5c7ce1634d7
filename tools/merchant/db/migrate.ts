import { ownSchemaMigration } from '../../lib/migrate';

/**
 * Applies the merchant simulator's own migrations (tools/merchant/drizzle/, schema `merchant`), tracked
 * apart from payrecon's in merchant.__drizzle_migrations. Idempotent. startMerchantSimulator runs it on
 * every start, so a simulator finds its tables on a fresh database; scripts/setup.sh and
 * docker-compose.yml run it as `npx tsx tools/merchant/db/migrate.ts [DATABASE_URL]`.
 */

const migration = ownSchemaMigration('merchant', {
  schema: 'merchant',
  what: 'merchant simulator',
  tables: 'merchant.deliveries',
});

export const migrateMerchantSchema = migration.migrate;

if (require.main === module) migration.fromCommandLine();
