import { ownSchemaMigration } from '../../lib/migrate';

/**
 * Applies the simulator's own migrations (tools/simulator/drizzle/, schema `provider`), tracked apart
 * from payrecon's in provider.__drizzle_migrations. Idempotent. startSimulator runs it on every start,
 * so a simulator finds its table on a fresh database; scripts/setup.sh and docker-compose.yml run it
 * as `npx tsx tools/simulator/db/migrate.ts [DATABASE_URL]`.
 */

const migration = ownSchemaMigration('simulator', {
  schema: 'provider',
  what: 'simulator',
  tables: 'provider.trades, provider.refunds, provider.bill_faults',
});

export const migrateSimulatorSchema = migration.migrate;

if (require.main === module) migration.fromCommandLine();
