import path from 'node:path';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import { createDatabase, redactUrl } from '../../../src/db/client';
import { ensureDatabase } from '../../../src/db/migrate';
import { loadConfig } from '../../../src/platform/config';

/**
 * Applies the merchant simulator's own migrations (tools/merchant/drizzle/, schema `merchant`), tracked
 * apart from payrecon's in merchant.__drizzle_migrations. Idempotent. startMerchantSimulator runs it on
 * every start, so a simulator finds its tables on a fresh database; scripts/setup.sh and
 * docker-compose.yml run it as `npx tsx tools/merchant/db/migrate.ts [DATABASE_URL]`.
 */

const MIGRATIONS = {
  migrationsFolder: path.resolve(__dirname, '../drizzle'),
  migrationsSchema: 'merchant',
  migrationsTable: '__drizzle_migrations',
};

/** Serializes merchant simulators that start together on one fresh database. */
const LOCK = 'payrecon-merchant-migrations';

export async function migrateMerchantSchema(url: string): Promise<void> {
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
    .then(() => migrateMerchantSchema(url))
    .then(
      () => console.log(`merchant simulator schema ready: ${redactUrl(url)} (merchant.deliveries)`),
      (error) => {
        console.error(`merchant simulator migration failed: ${(error as Error).message}`);
        process.exit(1);
      },
    );
}
