import path from 'node:path';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import { createDatabase, redactUrl } from '../../../src/db/client';
import { ensureDatabase } from '../../../src/db/migrate';
import { loadConfig } from '../../../src/platform/config';

/**
 * Applies the simulator's own migrations (tools/simulator/drizzle/, schema `provider`), tracked apart
 * from payrecon's in provider.__drizzle_migrations. Idempotent. startSimulator runs it on every start,
 * so a simulator finds its table on a fresh database; scripts/setup.sh and docker-compose.yml run it
 * as `npx tsx tools/simulator/db/migrate.ts [DATABASE_URL]`.
 */

const MIGRATIONS = {
  migrationsFolder: path.resolve(__dirname, '../drizzle'),
  migrationsSchema: 'provider',
  migrationsTable: '__drizzle_migrations',
};

/** Serializes simulators that start together on one fresh database (test files run in parallel). */
const LOCK = 'payrecon-simulator-migrations';

export async function migrateSimulatorSchema(url: string): Promise<void> {
  // One connection: the advisory lock belongs to its session, and closing it releases the lock.
  const { db, sql, close } = createDatabase(url, { max: 1 });
  try {
    await sql`select pg_advisory_lock(hashtext(${LOCK}))`;
    await migrate(db, MIGRATIONS);
  } finally {
    await close();
  }
}

if (require.main === module) {
  const url = process.argv[2] ?? loadConfig().DATABASE_URL;
  ensureDatabase(url)
    .then(() => migrateSimulatorSchema(url))
    .then(
      () => console.log(`simulator schema ready: ${redactUrl(url)} (provider.trades)`),
      (error) => {
        console.error(`simulator migration failed: ${(error as Error).message}`);
        process.exit(1);
      },
    );
}
