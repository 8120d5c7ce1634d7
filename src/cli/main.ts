import type { Command } from 'commander';
import type { CliIo, CliContext as Context } from './context';
import { registerDiscrepancyCommands } from './discrepancies';
import { registerDlqCommands } from './dlq';
import { registerOrderCommands } from './order';
import { createProgram, runMain, runProgram } from './program';
import { registerQueryCommand } from './query';
import { registerReplayCommand } from './replay';
import { registerSignalCommands } from './signal';

/**
 * payrecon's operator CLI (commander). Every command has --help and --json; exit codes: 0 done,
 * 1 the operation failed (the message names the service that is down), 2 bad usage or input.
 * Configuration comes from the environment, as for the services (src/platform/config.ts).
 * Paying a trade with faults is not an operator's job: the payment simulator has its own CLI
 * (tools/simulator/cli.ts, `npm run sim -- pay <orderId>`).
 */

const ENVIRONMENT_HELP = `
Configuration comes from the environment (see README, "Configuration"), e.g.
  DATABASE_URL, TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TASK_QUEUE, AMQP_URL, AMQP_PREFIX,
  PROVIDER_URL (the payment provider), POLL_LADDER, PAY_DEADLINE.

Exit codes: 0 done, 1 the operation failed, 2 bad usage or input.

Examples:
  payrecon order create --amount 1999 --pay-within 30m
  payrecon order show ord_... --json
  payrecon dlq list
  payrecon replay order-ord_... --out history.json`;

export function buildProgram(ctx: Context): Command {
  const program = createProgram(
    ctx,
    'payrecon',
    'operate payrecon: orders, signals, workflow queries and replays, the parking queue, discrepancies',
    ENVIRONMENT_HELP,
  );
  registerOrderCommands(program, ctx);
  registerSignalCommands(program, ctx);
  registerQueryCommand(program, ctx);
  registerReplayCommand(program, ctx);
  registerDlqCommands(program, ctx);
  registerDiscrepancyCommands(program, ctx);
  return program;
}

/** Runs one command line (without the node and script arguments); resolves with the exit code. */
export function runCli(argv: string[], io: CliIo): Promise<number> {
  return runProgram(buildProgram, argv, io);
}

/** The bin entry: runs process.argv and exits with the command's code. */
export function main(): Promise<void> {
  return runMain(runCli);
}

if (require.main === module) {
  void main();
}
