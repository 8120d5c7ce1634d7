import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type * as proto from '@temporalio/proto';
import type { RunnerTask } from 'vitest';

export type History = proto.temporal.api.history.v1.IHistory;

/**
 * The replay fixtures (test/replay.test.ts): the current workflow code's histories in this folder, and
 * from the first tagged release on, each released version's histories in a `<version>/` subfolder.
 */
export const HISTORIES_DIR = path.resolve(__dirname, '../fixtures/histories');

/**
 * The workflow tests (test/workflow.test.ts) whose histories are committed as replay fixtures, by
 * fixture name. A test records under one of these names; the replay test expects exactly these
 * scenarios in HISTORIES_DIR.
 */
/** The order workflow's scenarios (test/workflow.test.ts). */
export const ORDER_SCENARIOS = [
  'paid-mq-before-first-poll',
  'paid-mq-db-replies-lost',
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
  'notice-contradicts-provider',
  'notice-verified-always',
  'manual-notice-contradicted',
  'reconciliation-notice-verified',
  'provider-reply-unreadable',
  'review-resolved-closed',
  'review-resolved-paid',
] as const;
/** An order that ends while a notice arrives (test/finish-window.test.ts, a time-skipping server of its own). */
export const FINISH_SCENARIOS = ['paid-during-merchant-notification'] as const;
/** The merchant notification workflow's scenarios (test/notification.test.ts). */
export const DELIVERY_SCENARIOS = [
  'delivery-first-success',
  'delivery-stepwise-exhausted',
  'delivery-exponential-failures',
  'delivery-gone',
  'delivery-retry-after',
  'delivery-in-sequence',
  'delivery-worker-restart',
] as const;

/** The refund workflow's scenarios (test/refund.test.ts). */
export const REFUND_SCENARIOS = [
  'refund-by-query',
  'refund-by-notice',
  'refund-failed',
  'refund-unconfirmed',
  'refund-notice-during-query',
] as const;

/** The daily reconciliation's scenarios (test/reconciliation.test.ts, on the dev server). */
export const RECON_SCENARIOS = ['reconciliation-breaks', 'reconciliation-healed'] as const;

/** Orders started with a delay of the first ladder step (test/delayed-start.test.ts, on the dev server). */
export const DELAYED_START_SCENARIOS = ['paid-mq-during-start-delay', 'paid-poll-after-start-delay'] as const;

/** Every scenario whose history is a replay fixture. */
export const RECORDED_SCENARIOS = [
  ...ORDER_SCENARIOS,
  ...FINISH_SCENARIOS,
  ...DELIVERY_SCENARIOS,
  ...REFUND_SCENARIOS,
  ...RECON_SCENARIOS,
  ...DELAYED_START_SCENARIOS,
] as const;
export type RecordedScenario = (typeof RECORDED_SCENARIOS)[number];

/** `<scenario>.json`, or `<scenario>.run<N>.json` for each run of a chain that continued as new. */
export const FIXTURE_FILE = /^(?<scenario>[a-z0-9-]+?)(?:\.run(?<run>\d+))?\.json$/;

function fixtureFiles(scenario: string, runs: number): string[] {
  if (runs === 1) return [`${scenario}.json`];
  return Array.from({ length: runs }, (_, i) => `${scenario}.run${i + 1}.json`);
}

/** Every run of a workflow, first to last, following continue-as-new back from the latest run. */
export async function fetchChain(handle: WorkflowHandle): Promise<History[]> {
  const runs: History[] = [];
  let runId: string | undefined = (await handle.client.getHandle(handle.workflowId).describe()).runId;
  while (runId) {
    const history = await handle.client.getHandle(handle.workflowId, runId).fetchHistory();
    runs.unshift(history);
    runId =
      history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
  }
  return runs;
}

/** The proto3 JSON of a history, as `temporal workflow show --output json` writes it. */
function historyJson(history: History): string {
  return `${JSON.stringify(JSON.parse(historyToJSON(history)), null, 2)}\n`;
}

function testsIn(task: RunnerTask): RunnerTask[] {
  return task.type === 'suite' ? task.tasks.flatMap(testsIn) : [task];
}

/**
 * Writes the replay fixtures from the workflow tests' own runs when RECORD_HISTORIES=1 (otherwise it
 * does nothing): `record` after a test's assertions passed, `finish` once the file's tests are done.
 */
export class HistoryRecorder {
  readonly enabled = process.env.RECORD_HISTORIES === '1';
  private readonly written = new Map<RecordedScenario, string[]>();

  /** `scenarios`: the ones this test file records (each file keeps its own list complete). */
  constructor(private readonly scenarios: readonly RecordedScenario[]) {}

  /** Replaces the scenario's fixture files with every run of the handle's workflow. */
  async record(scenario: RecordedScenario, handle: WorkflowHandle): Promise<void> {
    if (!this.enabled) return;
    if (this.written.has(scenario)) throw new Error(`two tests record the history ${scenario}`);
    const runs = await fetchChain(handle);
    await mkdir(HISTORIES_DIR, { recursive: true });
    await this.remove((file) => FIXTURE_FILE.exec(file)?.groups?.scenario === scenario);
    const files = fixtureFiles(scenario, runs.length);
    await Promise.all(
      runs.map((history, i) => writeFile(path.join(HISTORIES_DIR, files[i] as string), historyJson(history))),
    );
    this.written.set(scenario, files);
  }

  /**
   * After a run of every test of the file (no -t filter, no failure), checks that every recorded
   * scenario was recorded and removes the fixtures of scenarios that no longer exist. After a subset,
   * it only reports what it wrote.
   */
  async finish(file: RunnerTask): Promise<void> {
    if (!this.enabled) return;
    const tests = testsIn(file);
    const complete = tests.every((test) => test.mode === 'run' && test.result?.state === 'pass');
    let stale: string[] = [];
    if (complete) {
      const missing = this.scenarios.filter((scenario) => !this.written.has(scenario));
      if (missing.length > 0) throw new Error(`no test recorded the histories ${missing.join(', ')}`);
      // Stale: a fixture of this file's scenarios it did not write now, or of no scenario at all.
      const current = new Set([...this.written.values()].flat());
      const known = new Set<string>(RECORDED_SCENARIOS);
      const mine = new Set<string>(this.scenarios);
      stale = await this.remove((name) => {
        const scenario = FIXTURE_FILE.exec(name)?.groups?.scenario;
        if (!name.endsWith('.json') || current.has(name)) return false;
        return !scenario || !known.has(scenario) || mine.has(scenario);
      });
    }
    const files = [...this.written.values()].flat();
    console.log(
      [
        `recorded ${this.written.size} histories (${files.length} files) into ${path.relative(process.cwd(), HISTORIES_DIR)}`,
        complete
          ? `removed ${stale.length} stale file(s)${stale.length ? `: ${stale.join(', ')}` : ''}`
          : 'not every test ran and passed: the other fixtures are kept as they were',
      ].join('; '),
    );
  }

  /** Deletes the top-level fixture files whose names match (never a released version's subfolder). */
  private async remove(matches: (file: string) => boolean): Promise<string[]> {
    const entries = await readdir(HISTORIES_DIR, { withFileTypes: true });
    const doomed = entries
      .filter((entry) => entry.isFile() && matches(entry.name))
      .map((entry) => entry.name);
    await Promise.all(doomed.map((name) => rm(path.join(HISTORIES_DIR, name))));
    return doomed;
  }
}
