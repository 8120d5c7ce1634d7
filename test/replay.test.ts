import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { temporal } from '@temporalio/proto';
import { DefaultLogger, type ReplayWorkerOptions, Runtime, Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { beforeAll, describe, expect, it } from 'vitest';
import { activityTypes } from '../src/platform/history';
import { FIXTURE_FILE, HISTORIES_DIR, type History, RECORDED_SCENARIOS } from './support/histories';

/**
 * Replays the committed workflow histories against the current workflow code: a change to workflows/
 * that would break the orders in flight fails here, before it is deployed. Offline: no server, no
 * database.
 *
 * - test/fixtures/histories/*.json: the current code's histories, one per scenario of
 *   test/workflow.test.ts, written by its own runs (`npm run histories:record`).
 * - test/fixtures/histories/<version>/*.json: the histories of a released version, kept from its tag on
 *   (none yet). Orders started by that version may still be running, so they must replay too.
 */

const VARIANTS_DIR = path.resolve(__dirname, 'fixtures/nondeterministic');
const WORKFLOWS_PATH = path.resolve(__dirname, '../workflows');
/** A released version's folder: v1.2.3, 1.2.3, v1.2.3-rc.1. */
const VERSION_FOLDER = /^v?\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$/;
const CURRENT = 'current';

/** The scenarios whose workflow closes the trade at the provider (the close path). */
const CLOSES_THE_TRADE = [
  'never-paid-closed',
  'paid-at-close',
  'cancel-unpaid',
  'paid-after-close-running',
  'paid-after-close-ended',
  'paid-during-merchant-notification',
  // An operator's CLOSED decision on an order held for review closes the trade too.
  'review-resolved-closed',
];

const { EventType } = temporal.api.enums.v1;

interface Fixture {
  /** Path under test/fixtures/histories: [<version>/]<scenario>.json, or <scenario>.run<N>.json for
   * each run of a continue-as-new chain. */
  file: string;
  /** "current" for the top folder, else the released version. */
  set: string;
  scenario: string;
  run: number;
  workflowId: string;
  runId: string;
  history: History;
}

function startedOf(history: History) {
  return history.events?.[0]?.workflowExecutionStartedEventAttributes;
}

/** Histories carry no workflow id; the order's is `order-<orderId>`, and the start input has the order id. */
function workflowIdOf(history: History, file: string): string {
  const data = startedOf(history)?.input?.payloads?.[0]?.data;
  if (!data) throw new Error(`${file}: the start event has no input`);
  const input = JSON.parse(Buffer.from(data).toString('utf8')) as {
    orderId?: string;
    provider?: string;
    billDate?: string;
  };
  // A daily reconciliation's id is its provider and day.
  if (input.provider && input.billDate) return `reconciliation-${input.provider}-${input.billDate}`;
  if (!input.orderId) throw new Error(`${file}: the workflow input has no orderId`);
  return `order-${input.orderId}`;
}

/** The top folder and every released version's subfolder. */
function fixtureSets(): { set: string; dir: string }[] {
  const versions = readdirSync(HISTORIES_DIR, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => ({ set: entry.name, dir: path.join(HISTORIES_DIR, entry.name) }));
  return [{ set: CURRENT, dir: HISTORIES_DIR }, ...versions];
}

function loadFixtures(): Fixture[] {
  return fixtureSets()
    .flatMap(({ set, dir }) =>
      readdirSync(dir)
        .filter((name) => name.endsWith('.json'))
        .map((name): Fixture => {
          const match = FIXTURE_FILE.exec(name);
          if (!match?.groups?.scenario) throw new Error(`unexpected fixture name ${name}`);
          const file = set === CURRENT ? name : `${set}/${name}`;
          const history = historyFromJSON(JSON.parse(readFileSync(path.join(dir, name), 'utf8')));
          return {
            file,
            set,
            scenario: match.groups.scenario,
            run: Number(match.groups.run ?? 1),
            workflowId: workflowIdOf(history, file),
            runId: startedOf(history)?.originalExecutionRunId ?? '',
            history,
          };
        }),
    )
    .sort((a, b) => a.set.localeCompare(b.set) || a.scenario.localeCompare(b.scenario) || a.run - b.run);
}

let fixtures: Fixture[];

beforeAll(() => {
  // Failed replays are what some of these tests expect; SDK Core would log each one at WARN.
  // (This file runs in its own process, where nothing else installs the runtime.)
  Runtime.install({
    logger: new DefaultLogger('ERROR'),
    telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } },
  });
  fixtures = loadFixtures();
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

const scenariosIn = (set: string) => [
  ...new Set(fixtures.filter((f) => f.set === set).map((f) => f.scenario)),
];

describe('recorded workflow histories', () => {
  it('cover every scenario of the workflow tests, each with its complete chain of runs', () => {
    expect(scenariosIn(CURRENT).sort()).toEqual([...RECORDED_SCENARIOS].sort());
    const sets = [...new Set(fixtures.map((f) => f.set))];
    for (const set of sets.filter((s) => s !== CURRENT)) expect(set).toMatch(VERSION_FOLDER);
    for (const set of sets) {
      for (const scenario of scenariosIn(set)) {
        const runs = fixtures.filter((f) => f.set === set && f.scenario === scenario);
        const name = `${set}/${scenario}`;
        expect(
          runs.map((f) => f.run),
          name,
        ).toEqual(runs.map((_, i) => i + 1));
        runs.forEach((fixture, i) => {
          // A chain: each run continues as new into the next; the last one completes.
          expect(fixture.history.events?.at(-1)?.eventType, fixture.file).toBe(
            i === runs.length - 1
              ? EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
              : EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
          );
          expect(startedOf(fixture.history)?.continuedExecutionRunId || undefined, fixture.file).toBe(
            runs[i - 1]?.runId,
          );
          expect(fixture.workflowId, fixture.file).toBe(runs[0]?.workflowId);
        });
        if (scenario.startsWith('continue-as-new')) expect(runs.length, name).toBeGreaterThan(1);
      }
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
      expect([...new Set(closers.filter((f) => f.set === set).map((f) => f.scenario))].sort(), set).toEqual(
        CLOSES_THE_TRADE.filter((scenario) => scenariosIn(set).includes(scenario)).sort(),
      );
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

  it('passes the same change guarded by patched()', async () => {
    const outcomes = await replayAll({
      replayName: 'payrecon-replay-patched',
      interceptors: { workflowModules: [path.join(VARIANTS_DIR, 'patched-pause-before-close-trade')] },
    });
    expect(outcomes).toEqual(Object.fromEntries(fixtures.map((f) => [f.file, 'ok'])));
  });
});
