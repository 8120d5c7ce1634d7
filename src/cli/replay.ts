import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { WorkflowNotFoundError } from '@temporalio/client';
import { historyFromJSON, historyToJSON } from '@temporalio/common/lib/proto-utils';
import type * as proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import type { Command } from 'commander';
import { installWorkerRuntime } from '../../workers/runtime';
import { type CliContext, CliError, describeError, UsageError } from './context';
import { emit, withJson } from './output';

/**
 * `replay`: runs a recorded workflow history against the current workflow code, as a replay worker
 * does in CI. A code change that no longer produces the recorded commands fails with the determinism
 * error; exit 0 only when the replay is clean.
 */

export const WORKFLOWS_PATH = path.resolve(__dirname, '../../workflows');

type History = proto.temporal.api.history.v1.IHistory;

/** proto3 JSON, the format of `temporal workflow show --output json` and of the replay fixtures. */
export function historyToJson(history: History): string {
  return JSON.stringify(JSON.parse(historyToJSON(history)), null, 2);
}

export function historyFromJson(json: unknown): History {
  if (!json || typeof json !== 'object' || !Array.isArray((json as { events?: unknown }).events)) {
    throw new Error('expected an object with an array of events');
  }
  const history = historyFromJSON(json);
  if (!history?.events || history.events.length === 0) throw new Error('it has no events');
  return history;
}

/** Histories carry no workflow id; an order workflow's start input has the order id. */
function workflowIdFromHistory(history: History): string | undefined {
  const data = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data;
  if (!data) return undefined;
  try {
    const input = JSON.parse(Buffer.from(data).toString('utf8')) as { orderId?: unknown };
    return typeof input.orderId === 'string' ? `order-${input.orderId}` : undefined;
  } catch {
    return undefined;
  }
}

interface ReplayOptions {
  file?: string;
  runId?: string;
  out?: string;
  json?: boolean;
}

async function historyFromFile(file: string): Promise<History> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read the history file ${file}: ${describeError(error)}`);
  }
  try {
    return historyFromJson(JSON.parse(text));
  } catch (error) {
    throw new UsageError(
      `${file} is not a Temporal history in JSON (as written by --out or \`temporal workflow show --output json\`): ${describeError(error)}`,
    );
  }
}

async function historyFromServer(ctx: CliContext, workflowId: string, runId?: string): Promise<History> {
  const client = await ctx.temporal();
  try {
    return await client.workflow.getHandle(workflowId, runId).fetchHistory();
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) {
      throw new CliError(`no workflow ${workflowId}${runId ? ` run ${runId}` : ''} on the Temporal server`);
    }
    throw new CliError(`fetching the history of ${workflowId} failed: ${describeError(error)}`);
  }
}

/** Replays one history; resolves with null when deterministic, else with the error. */
export async function replayHistory(history: History, workflowId?: string): Promise<Error | null> {
  installWorkerRuntime('ERROR');
  try {
    await Worker.runReplayHistory(
      { workflowsPath: WORKFLOWS_PATH, replayName: 'payrecon-cli' },
      history,
      workflowId,
    );
    return null;
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

export function registerReplayCommand(program: Command, ctx: CliContext): void {
  withJson(
    program
      .command('replay')
      .description(
        "replay a workflow's history against the current workflow code: from the Temporal server by workflow id, or from a JSON file",
      )
      .argument('[workflowId]', 'the workflow to fetch from the server, e.g. order-ord_abc123')
      .option('--file <path>', 'replay this history JSON file instead of fetching one')
      .option('--run-id <runId>', 'a specific run of the workflow (default: the latest)')
      .option('--out <path>', 'save the fetched history as JSON (a replay-test fixture)'),
  ).action(async (workflowId: string | undefined, options: ReplayOptions) => {
    if (workflowId && options.file) throw new UsageError('give a workflow id or --file, not both');
    if (!workflowId && !options.file)
      throw new UsageError('give the workflow id to fetch, or --file <history.json>');
    if (options.file && (options.out || options.runId)) {
      throw new UsageError('--out and --run-id apply to a history fetched from the server, not to --file');
    }
    const history = options.file
      ? await historyFromFile(options.file)
      : await historyFromServer(ctx, workflowId as string, options.runId);
    if (options.out) {
      try {
        await writeFile(options.out, `${historyToJson(history)}\n`);
      } catch (error) {
        throw new CliError(`cannot write ${options.out}: ${describeError(error)}`);
      }
    }
    const source = options.file ? { file: options.file } : { workflowId, runId: options.runId ?? null };
    const events = history.events?.length ?? 0;
    const failure = await replayHistory(history, workflowId ?? workflowIdFromHistory(history));
    const result = {
      ...source,
      events,
      savedTo: options.out ?? null,
      deterministic: failure === null,
      error: failure ? { name: failure.name, message: failure.message } : null,
    };
    emit(ctx, options, result, () => {
      const what = options.file ? options.file : workflowId;
      const saved = options.out ? `\nhistory saved to ${options.out}` : '';
      return failure
        ? `replay FAILED for ${what} (${events} events): ${failure.name}: ${failure.message}${saved}`
        : `replay OK: deterministic (${what}, ${events} events)${saved}`;
    });
    if (failure) {
      // The details are in the output above; the error line only says what failed.
      throw new CliError(
        failure.name === 'DeterminismViolationError'
          ? 'the current workflow code does not replay this history deterministically'
          : `the current workflow code does not replay this history (${failure.name})`,
      );
    }
  });
}
