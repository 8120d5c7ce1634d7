import path from 'node:path';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import { loadConfig } from '../platform/config';
import { createDatabase, redactUrl } from './client';

/** Creates the database named in `url` when it is missing (connecting to the `postgres` database to do it). */
export async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.replace(/^\//, ''));
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw new Error(`database name "${name}" must be letters, digits or _`);
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const sql = postgres(admin.toString(), { max: 1, onnotice: () => {}, connect_timeout: 5 });
  try {
    const rows = await sql`select 1 from pg_database where datname = ${name}`;
    if (rows.length === 0) await sql.unsafe(`create database "${name}"`);
  } catch (error) {
    throw new Error(`PostgreSQL is not reachable at ${redactUrl(url)}: ${(error as Error).message}`);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Creates the database if needed and applies the committed drizzle migrations (idempotent). */
export async function migrateDatabase(url: string): Promise<void> {
  await ensureDatabase(url);
  const { db, close } = createDatabase(url, { max: 1 });
  try {
    await migrate(db, { migrationsFolder: path.resolve(__dirname, '../../drizzle') });
  } finally {
    await close();
  }
}

if (require.main === module) {
  const url = process.argv[2] ?? loadConfig().DATABASE_URL;
  migrateDatabase(url).then(
    () => console.log(`database ready: ${redactUrl(url)}`),
    (error) => {
      console.error(`migration failed: ${(error as Error).message}`);
      process.exit(1);
    },
  );
}
