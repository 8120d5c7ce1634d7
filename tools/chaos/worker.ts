import { renameSync, rmSync } from 'node:fs';
import { Context } from '@temporalio/activity';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, Next } from '@temporalio/worker';
import { assertSecretsConfigured, loadConfig } from '../../src/platform/config';
import { createLogger } from '../../src/platform/logger';
import { createOrderWorker } from '../../workers/worker';

/**
 * The chaos run's worker: payrecon's worker (workers/worker.ts) plus one fault hook the run arms by
 * creating the file CHAOS_KILL_IN_APPLY_REFUND names. The first applyRefund to commit after that claims
 * the file (a rename: one worker wins) and the process SIGKILLs itself before the local activity's
 * result reaches the workflow: the workflow task fails, and the next worker runs applyRefund again over
 * its own committed write (the lost reply of issue 20). Inert while the file does not exist.
 */
const ARMED = process.env.CHAOS_KILL_IN_APPLY_REFUND;

class KillAfterApplyRefund implements ActivityInboundCallsInterceptor {
  async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>) {
    const result = await next(input);
    if (ARMED && Context.current().info.activityType === 'applyRefund' && claim(ARMED)) {
      process.stderr.write(`chaos: SIGKILL inside applyRefund (pid ${process.pid}), after its commit\n`);
      process.kill(process.pid, 'SIGKILL');
      await new Promise(() => {});
    }
    return result;
  }
}

function claim(file: string): boolean {
  try {
    renameSync(file, `${file}.${process.pid}`);
    rmSync(`${file}.${process.pid}`, { force: true });
    return true;
  } catch {
    return false;
  }
}

async function main() {
  const config = loadConfig();
  assertSecretsConfigured(config);
  const log = createLogger('worker', config.LOG_LEVEL);
  const { worker, run } = await createOrderWorker({
    config,
    metricsAddress: config.WORKER_METRICS_ADDRESS,
    tuning: { interceptors: { activity: [() => ({ inbound: new KillAfterApplyRefund() })] } },
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => worker.shutdown());
  log.info({ taskQueue: config.TEMPORAL_TASK_QUEUE, armedBy: ARMED ?? null }, 'chaos worker started');
  await run();
}

main().catch((error) => {
  console.error(`worker failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
