import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import type * as proto from '@temporalio/proto';
import { DefaultLogger, type ReplayWorkerOptions, Runtime, Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { beforeAll, describe, expect, it } from 'vitest';
import { activityTypes } from '../src/platform/history';

/**
 * Replays the histories recorded from the dev server (test/fixtures/histories, written by
 * scripts/record-histories.ts) against the current workflow code: a change to workflows/ that would
 * break the orders in flight fails here, before it is deployed. Offline: no server, no database.
 */

type History = proto.temporal.api.history.v1.IHistory;

const HISTORIES_DIR = path.resolve(__dirname, 'fixtures/histories');
const VARIANTS_DIR = path.resolve(__dirname, 'fixtures/nondeterministic');
const WORKFLOWS_PATH = path.resolve(__dirname, '../workflows');

/** Every scenario scripts/record-histories.ts records. A missing or an unknown fixture fails the test. */
const SCENARIOS = [
  'paid-mq-before-first-poll',
  'paid-poll-step-1',
  'paid-poll-step-3',
  'paid-poll-last-step',
  'never-paid-closed',
  'paid-at-close',
  'cancel-unpaid',
  'cancel-already-paid',
  'duplicate-notices',
  'amount-mismatch-mq',
  'amount-mismatch-poll',
  'paid-after-close-running',
  'paid-after-close-ended',
  'provider-outage-then-back',
  'payment-initiated-restarts-ladder',
  'continue-as-new-duplicate-flood',
];
/** The scenarios whose workflow closes the trade at the provider (the close path). */
const CLOSES_THE_TRADE = [
  'never-paid-closed',
  'paid-at-close',
  'cancel-unpaid',
  'paid-after-close-running',
  'paid-after-close-ended',
];

interface Fixture {
  /** Path under HISTORIES_DIR: [pre-<patch-id>/]<scenario>.json, or <scenario>.run<N>.json for each run
   * of a continue-as-new chain. */
  file: string;
  /** "current" for the top folder; "pre-<patch-id>" for the histories recorded before that patch. */
  set: string;
  scenario: string;
  run: number;
  workflowId: string;
  runId: string;
  history: History;
}

interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}
interface JsonEvent {
  eventType: string;
  workflowExecutionStartedEventAttributes?: {
    originalExecutionRunId?: string;
    continuedExecutionRunId?: string;
    input?: { payloads?: JsonPayload[] };
  };
}

/** Histories carry no workflow id; the order's is `order-<orderId>`, and the start input has the order id. */
function workflowIdOf(started: JsonEvent['workflowExecutionStartedEventAttributes'], file: string): string {
  const data = started?.input?.payloads?.[0]?.data;
  if (!data) throw new Error(`${file}: the start event has no input`);
  const input = JSON.parse(Buffer.from(data, 'base64').toString('utf8')) as { orderId?: string };
  if (!input.orderId) throw new Error(`${file}: the workflow input has no orderId`);
  return `order-${input.orderId}`;
}

/** The top folder holds the current code's histories; each pre-<patch-id>/ folder, those recorded before
 * that patch, which the patched() guard must keep replaying until no such order can still be running. */
function fixtureSets(): { set: string; dir: string }[] {
  const older = readdirSync(HISTORIES_DIR, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && entry.name.startsWith('pre-'))
    .map((entry) => ({ set: entry.name, dir: path.join(HISTORIES_DIR, entry.name) }));
  return [{ set: 'current', dir: HISTORIES_DIR }, ...older];
}

function loadFixtures(): { fixtures: Fixture[]; json: Map<string, JsonEvent[]> } {
  const json = new Map<string, JsonEvent[]>();
  const fixtures = fixtureSets()
    .flatMap(({ set, dir }) =>
      readdirSync(dir)
        .filter((name) => name.endsWith('.json'))
        .map((name): Fixture => {
          const match = /^(?<scenario>[a-z0-9-]+?)(?:\.run(?<run>\d+))?\.json$/.exec(name);
          if (!match?.groups?.scenario) throw new Error(`unexpected fixture name ${name}`);
          const file = set === 'current' ? name : `${set}/${name}`;
          const raw = JSON.parse(readFileSync(path.join(dir, name), 'utf8')) as { events: JsonEvent[] };
          json.set(file, raw.events);
          const started = raw.events[0]?.workflowExecutionStartedEventAttributes;
          return {
            file,
            set,
            scenario: match.groups.scenario,
            run: Number(match.groups.run ?? 1),
            workflowId: workflowIdOf(started, file),
            runId: started?.originalExecutionRunId ?? '',
            history: historyFromJSON(raw),
          };
        }),
    )
    .sort((a, b) => a.set.localeCompare(b.set) || a.scenario.localeCompare(b.scenario) || a.run - b.run);
  return { fixtures, json };
}

let fixtures: Fixture[];
let events: Map<string, JsonEvent[]>;

beforeAll(() => {
  // Failed replays are what some of these tests expect; SDK Core would log each one at WARN.
  // (This file runs in its own process, where nothing else installs the runtime.)
  Runtime.install({
    logger: new DefaultLogger('ERROR'),
    telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } },
  });
  ({ fixtures, json: events } = loadFixtures());
});

/** Replays every fixture; per file "ok", "DeterminismViolationError" or the other error's message. */
async function replayAll(options: Partial<ReplayWorkerOptions> = {}): Promise<Record<string, string>> {
  const outcomes: Record<string, string> = {};
  const results = Worker.runReplayHistories(
    { workflowsPath: WORKFLOWS_PATH, replayName: 'payrecon-replay', ...options },
    fixtures.map(({ workflowId, history }) => ({ workflowId, history })),
  );
  let i = 0;
  for await (const result of results) {
    // One history at a time, in the order given.
    const fixture = fixtures[i++];
    if (!fixture || fixture.runId !== result.runId)
      throw new Error(`unexpected replay result ${result.runId}`);
    outcomes[fixture.file] = !result.error
      ? 'ok'
      : result.error instanceof DeterminismViolationError
        ? 'DeterminismViolationError'
        : `${result.error.name}: ${result.error.message}`;
  }
  expect(i).toBe(fixtures.length);
  return outcomes;
}

describe('recorded workflow histories', () => {
  it('cover every scenario, each with complete histories, in the current set and each pre-patch set', () => {
    const sets = [...new Set(fixtures.map((f) => f.set))];
    expect(sets).toContain('current');
    expect(sets).toContain('pre-db-writes-as-local-activities');
    for (const set of sets) {
      const inSet = fixtures.filter((f) => f.set === set);
      expect([...new Set(inSet.map((f) => f.scenario))].sort(), set).toEqual([...SCENARIOS].sort());
    }
    for (const [set, scenario] of sets.flatMap((set) => SCENARIOS.map((sc) => [set, sc] as const))) {
      const runs = fixtures.filter((f) => f.set === set && f.scenario === scenario);
      expect(
        runs.map((f) => f.run),
        scenario,
      ).toEqual(runs.map((_, i) => i + 1));
      runs.forEach((fixture, i) => {
        const list = events.get(fixture.file) ?? [];
        const last = i === runs.length - 1;
        // A chain: each run continues as new into the next; the last one completes.
        expect(list.at(-1)?.eventType, fixture.file).toBe(
          last ? 'EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED' : 'EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW',
        );
        const previous = runs[i - 1];
        expect(list[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId, fixture.file).toBe(
          previous?.runId,
        );
        expect(fixture.workflowId, fixture.file).toBe(runs[0]?.workflowId);
      });
    }
    for (const set of sets) {
      const chain = fixtures.filter((f) => f.set === set && f.scenario === 'continue-as-new-duplicate-flood');
      expect(chain.length, set).toBeGreaterThan(1);
    }
  });

  it('replay against the current workflow code without a determinism error', async () => {
    const outcomes = await replayAll();
    expect(outcomes).toEqual(Object.fromEntries(fixtures.map((f) => [f.file, 'ok'])));
  });
});

describe('the replay check', () => {
  it('fails the histories that closed a trade when a command is added to the close path', async () => {
    const closers = fixtures.filter((f) => activityTypes(f.history).includes('closeTrade'));
    for (const set of new Set(fixtures.map((f) => f.set))) {
      expect(
        closers
          .filter((f) => f.set === set)
          .map((f) => f.scenario)
          .sort(),
        set,
      ).toEqual([...CLOSES_THE_TRADE].sort());
    }

    const outcomes = await replayAll({
      replayName: 'payrecon-replay-nondeterministic',
      interceptors: { workflowModules: [path.join(VARIANTS_DIR, 'pause-before-close-trade')] },
    });
    expect(outcomes).toEqual(
      Object.fromEntries(
        fixtures.map((f) => [f.file, closers.includes(f) ? 'DeterminismViolationError' : 'ok']),
      ),
    );
  });

  it('fails every pre-patch history when the database writes become local activities without patched()', async () => {
    const outcomes = await replayAll({
      replayName: 'payrecon-replay-unguarded-local-activities',
      interceptors: { workflowModules: [path.join(VARIANTS_DIR, 'unguarded-local-db-writes')] },
    });
    expect(outcomes).toEqual(
      Object.fromEntries(
        fixtures.map((f) => [f.file, f.set === 'current' ? 'ok' : 'DeterminismViolationError']),
      ),
    );
  });

  it('passes the same change guarded by patched()', async () => {
    const outcomes = await replayAll({
      replayName: 'payrecon-replay-patched',
      interceptors: { workflowModules: [path.join(VARIANTS_DIR, 'patched-pause-before-close-trade')] },
    });
    expect(outcomes).toEqual(Object.fromEntries(fixtures.map((f) => [f.file, 'ok'])));
  });
});
