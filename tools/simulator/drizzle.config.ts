import { defineConfig } from 'drizzle-kit';

/**
 * The simulator's own migrations (schema `provider` only), apart from payrecon's (drizzle.config.ts):
 * `npm run sim:db:generate` after changing tools/simulator/db/schema.ts. Applied by
 * tools/simulator/db/migrate.ts, which tracks them in provider.__drizzle_migrations.
 */
export default defineConfig({
  dialect: 'postgresql',
  schema: './tools/simulator/db/schema.ts',
  out: './tools/simulator/drizzle',
  schemaFilter: ['provider'],
  migrations: { schema: 'provider', table: '__drizzle_migrations' },
  dbCredentials: { url: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/payrecon' },
});
