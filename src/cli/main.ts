import { type Command, Help } from 'commander';
import type { CliIo, CliContext as Context } from './context';
import { createProgram, runMain, runProgram } from './program';

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
  PROVIDER_URL (the payment provider), POLL_LADDER, PAY_DEADLINE, RECON_PROVIDER, RECON_SCHEDULE_AT.

Exit codes: 0 done, 1 the operation failed, 2 bad usage or input.

Examples:
  payrecon order create --amount 1999 --pay-within 30m
  payrecon order show ord_... --json
  payrecon dlq list
  payrecon replay order-ord_... --out history.json
  payrecon recon report 2026-04-01`;

type Register = (program: Command, ctx: Context) => void;

/** A top-level command and the module that registers it (with its subcommands). */
interface CommandGroup {
  name: string;
  /**
   * Its line in `payrecon --help`, as its module registers it: the usage term (default: the name) and the
   * description. test/build.test.ts fails when they drift apart from the module's.
   */
  term?: string;
  description: string;
  /** Imports the module, and with it the client libraries its commands use. */
  load: () => Promise<Register>;
}

/**
 * Every command group, one line each, in `--help` order. A command line loads only the module of the
 * group it names (`payrecon order ...`, `payrecon help order`); the others stay stubs that only show
 * their line in the help, so `payrecon --help` loads neither Temporal nor drizzle nor amqplib.
 */
export const COMMAND_GROUPS: readonly CommandGroup[] = [
  {
    name: 'order',
    description: 'create, show and list orders',
    load: async () => (await import('./order')).registerOrderCommands,
  },
  {
    name: 'signal',
    description: "send a signal to an order's workflow",
    load: async () => (await import('./signal')).registerSignalCommands,
  },
  {
    name: 'query',
    term: 'query [options] <orderId>',
    description: "show an order workflow's live state (phase, poll attempts, last poll, how it settled)",
    load: async () => (await import('./query')).registerQueryCommand,
  },
  {
    name: 'replay',
    term: 'replay [options] [workflowId]',
    description:
      "replay a workflow's history against the current workflow code: from the Temporal server by workflow id, or from a JSON file",
    load: async () => (await import('./replay')).registerReplayCommand,
  },
  {
    name: 'dlq',
    description: 'inspect and re-drive the parking (dead-letter) queue of payment notifications',
    load: async () => (await import('./dlq')).registerDlqCommands,
  },
  {
    name: 'discrepancies',
    description: 'payment facts that contradict an order (amount mismatch, paid after close, ...)',
    load: async () => (await import('./discrepancies')).registerDiscrepancyCommands,
  },
  {
    name: 'review',
    description: 'settle an order held for review (NEEDS_REVIEW) as PAID or CLOSED, through its workflow',
    load: async () => (await import('./review')).registerReviewCommands,
  },
  {
    name: 'notifications',
    description:
      "merchant result notifications: list, show attempts, redeliver, recover; the merchants' endpoints",
    load: async () => (await import('./notifications')).registerNotificationCommands,
  },
  {
    name: 'refund',
    description: 'ask for refunds of paid orders, show and list them',
    load: async () => (await import('./refund')).registerRefundCommands,
  },
  {
    name: 'recon',
    description:
      "the daily reconciliation against the provider's statement: run a day, the schedule, backfill, reports, breaks",
    load: async () => (await import('./recon')).registerReconCommands,
  },
  // A new command group: one more entry here (name, term if it takes arguments, description, load).
];

/** The group a command line runs or asks help for: its first word, or the word after `help`. */
export function addressedGroup(argv: readonly string[]): CommandGroup | undefined {
  const words = argv.filter((arg) => !arg.startsWith('-'));
  const name = words[0] === 'help' ? words[1] : words[0];
  return COMMAND_GROUPS.find((group) => group.name === name);
}

/**
 * The program for one command line: the group `argv` names is loaded and registered, every other group
 * is a stub with its help line. Without `argv`, every group is loaded.
 */
export async function buildProgram(ctx: Context, argv?: readonly string[]): Promise<Command> {
  const wanted = argv ? COMMAND_GROUPS.filter((group) => group === addressedGroup(argv)) : COMMAND_GROUPS;
  const loaded = new Map(
    await Promise.all(wanted.map(async (group) => [group, await group.load()] as const)),
  );
  const program = createProgram(
    ctx,
    'payrecon',
    'operate payrecon: orders, signals, workflow queries and replays, the parking queue, discrepancies, reconciliation',
    ENVIRONMENT_HELP,
  );
  const stubTerms = new Map<Command, string>();
  program.configureHelp({
    subcommandTerm(this: Help, command: Command) {
      return stubTerms.get(command) ?? Help.prototype.subcommandTerm.call(this, command);
    },
  });
  for (const group of COMMAND_GROUPS) {
    const register = loaded.get(group);
    if (register) register(program, ctx);
    else stubTerms.set(program.command(group.name).description(group.description), group.term ?? group.name);
  }
  return program;
}

/** Runs one command line (without the node and script arguments); resolves with the exit code. */
export function runCli(argv: string[], io: CliIo): Promise<number> {
  return runProgram((ctx) => buildProgram(ctx, argv), argv, io);
}

/** The bin entry: runs process.argv and exits with the command's code. */
export function main(): Promise<void> {
  return runMain(runCli);
}

if (require.main === module) {
  void main();
}
