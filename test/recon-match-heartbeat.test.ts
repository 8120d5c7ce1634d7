import { randomUUID } from 'node:crypto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { createReconciliationActivities } from '../activities/reconciliation';
import { createDatabase } from '../src/db/client';
import { testConfig } from './support/env';
import { ScriptedGateway } from './support/scripted-gateway';

/**
 * The day's match is a few set-based statements that can run for minutes on a big day. It heartbeats
 * while they run, so a worker killed mid-match is noticed within the heartbeat timeout (30 s) and
 * another worker retries it, instead of the day's run waiting out the 30 min start-to-close.
 */
const config = testConfig('recon-heartbeat');
const database = createDatabase(config.DATABASE_URL, { max: 3 });
const blocker = createDatabase(config.DATABASE_URL, { max: 1 });

afterAll(async () => {
  await blocker.close();
  await database.close();
});

describe('matchStatement', () => {
  it('heartbeats while its SQL runs (here: held up by a lock on the staged rows)', async () => {
    const provider = `simulator-hb-${randomUUID().slice(0, 8)}`;
    const [statement] = await database.sql`
      insert into reconciliation_statements (provider, bill_date, encoding, zipped, parsed_at)
      values (${provider}, '2003-03-03', 'utf-8', false, now()) returning id`;
    const activities = createReconciliationActivities(database.db, new ScriptedGateway());
    const env = new MockActivityEnvironment();
    const beats: unknown[] = [];
    env.on('heartbeat', (details: unknown) => beats.push(details));

    // Another session holds the staged rows for 12 s: the match's reads wait behind it.
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const locked = new Promise<void>((resolve) => {
      void blocker.sql.begin(async (tx) => {
        await tx`lock table reconciliation_statement_rows in access exclusive mode`;
        resolve();
        await released;
      });
    });
    await locked;
    const timer = setTimeout(release, 12_000);

    const summary = await env.run(activities.matchStatement, {
      provider,
      billDate: '2003-03-03',
      statementId: Number(statement?.id),
      runId: null,
      midnightEdgeMs: 0,
    });
    clearTimeout(timer);
    release();
    expect(beats.length).toBeGreaterThanOrEqual(2);
    expect(summary).toMatchObject({ theirs: expect.anything() });
  }, 60_000);
});
