import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { redactUrl } from '../platform/redact';
import * as schema from './schema';

export { redactUrl };

export type Sql = postgres.Sql;
export type Database = ReturnType<typeof createDatabase>['db'];

/** One pool per process. `onnotice` is silenced: migrations' "already exists" notices are noise. */
export function createDatabase(url: string, options: { max?: number } = {}) {
  const sql = postgres(url, {
    max: options.max ?? 10,
    onnotice: () => {},
    connect_timeout: 5,
  });
  const db = drizzle(sql, { schema });
  return { sql, db, close: () => sql.end({ timeout: 5 }) };
}

/** Throws an error that names PostgreSQL and the URL (without password) when it cannot be reached. */
export async function assertDatabaseReachable(sql: Sql, url: string): Promise<void> {
  try {
    await sql`select 1`;
  } catch (error) {
    throw new Error(`PostgreSQL is not reachable at ${redactUrl(url)}: ${(error as Error).message}`);
  }
}
