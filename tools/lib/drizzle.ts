import { type Config, defineConfig } from 'drizzle-kit';

/**
 * The drizzle-kit configuration of a rig service's own schema (`tools/<dir>/db/schema.ts`, generated into
 * `tools/<dir>/drizzle`), apart from payrecon's (drizzle.config.ts): only that schema, its migrations
 * tracked in `<schema>.__drizzle_migrations` (as tools/lib/migrate.ts applies them).
 */
export function ownSchemaDrizzleConfig(dir: string, schema: string): Config {
  return defineConfig({
    dialect: 'postgresql',
    schema: `./tools/${dir}/db/schema.ts`,
    out: `./tools/${dir}/drizzle`,
    schemaFilter: [schema],
    migrations: { schema, table: '__drizzle_migrations' },
    dbCredentials: { url: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/payrecon' },
  });
}
