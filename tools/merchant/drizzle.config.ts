import { defineConfig } from 'drizzle-kit';

/**
 * The merchant simulator's own migrations (schema `merchant` only), apart from payrecon's
 * (drizzle.config.ts) and the payment simulator's: `npm run merchant:db:generate` after changing
 * tools/merchant/db/schema.ts. Applied by tools/merchant/db/migrate.ts, which tracks them in
 * merchant.__drizzle_migrations.
 */
export default defineConfig({
  dialect: 'postgresql',
  schema: './tools/merchant/db/schema.ts',
  out: './tools/merchant/drizzle',
  schemaFilter: ['merchant'],
  migrations: { schema: 'merchant', table: '__drizzle_migrations' },
  dbCredentials: { url: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/payrecon' },
});
