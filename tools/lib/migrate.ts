import path from 'node:path';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import { createDatabase, redactUrl } from '../../src/db/client';
import { ensureDatabase } from '../../src/db/migrate';
import { loadConfig } from '../../src/platform/config';

/**
 * Migrations of a rig service's own PostgreSQL schema (the payment simulator's `provider`, the merchant
 * simulator's `merchant`), tracked apart from payrecon's in `<schema>.__drizzle_migrations`.
 */

export interface OwnSchema {
  /** The schema the migrations create and are tracked in. */
  schema: string;
  /** The folder drizzle-kit generated them into. */
  migrationsFolder: string;
  /** The advisory lock's key: serializes services that start together on one fresh database. */
  lockKey: string;
}

/** Applies the migrations under a session advisory lock. Idempotent. */
export async function migrateOwnSchema(url: string, own: OwnSchema): Promise<void> {
  // One connection: the advisory lock belongs to its session, and closing it releases the lock.
  const { db, sql, close } = createDatabase(url, { max: 1 });
  try {
    await sql`select pg_advisory_lock(hashtext(${own.lockKey}))`;
    await migrate(db, {
      migrationsFolder: own.migrationsFolder,
      migrationsSchema: own.schema,
      migrationsTable: '__drizzle_migrations',
    });
  } finally {
    await close();
  }
}

/**
 * The migration of the service in `tools/<dir>/` by the rig's conventions (migrations in
 * `tools/<dir>/drizzle`, as tools/lib/drizzle.ts generates them; lock key `payrecon-<dir>-migrations`):
 * `migrate(url)`, and `fromCommandLine()` for `npx tsx tools/<dir>/db/migrate.ts [DATABASE_URL]`, which
 * prints `<what> schema ready: <url> (<tables>)`.
 */
export function ownSchemaMigration(
  dir: string,
  own: { schema: string; what: string; tables: string },
): { migrate: (url: string) => Promise<void>; fromCommandLine: () => void } {
  const migrate = (url: string) =>
    migrateOwnSchema(url, {
      schema: own.schema,
      migrationsFolder: path.resolve(__dirname, '..', dir, 'drizzle'),
      lockKey: `payrecon-${dir}-migrations`,
    });
  return { migrate, fromCommandLine: () => migrateFromCommandLine(own.what, own.tables, migrate) };
}

/**
 * `npx tsx tools/<service>/db/migrate.ts [DATABASE_URL]`: creates the database if missing, migrates, and
 * prints `<what> schema ready: <url> (<tables>)`, or `<what> migration failed: ...` and exits 1.
 */
export function migrateFromCommandLine(
  what: string,
  tables: string,
  migrateSchema: (url: string) => Promise<void>,
): void {
  const url = process.argv[2] ?? loadConfig().DATABASE_URL;
  ensureDatabase(url)
    .then(() => migrateSchema(url))
    .then(
      () => console.log(`${what} schema ready: ${redactUrl(url)} (${tables})`),
      (error) => {
        console.error(`${what} migration failed: ${(error as Error).message}`);
        process.exit(1);
      },
    );
}
