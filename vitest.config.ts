import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests share one Temporal dev server, Postgres and RabbitMQ, and bundle workflows:
    // one file at a time keeps two cores from timing each other out.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // The public development secret is allowed in tests (workers refuse it in production mode).
    env: { PAYRECON_ENV: 'development' },
  },
});
