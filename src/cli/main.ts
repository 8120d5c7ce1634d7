import { Command, CommanderError } from 'commander';
import { version } from '../../package.json';
import { registerPayCommand } from '../../tools/simulator/cli';
import { CliContext, CliError, type CliIo, type CliContext as Context, describeError, EXIT } from './context';
import { registerDiscrepancyCommands } from './discrepancies';
import { registerDlqCommands } from './dlq';
import { registerOrderCommands } from './order';
import { registerQueryCommand } from './query';
import { registerReplayCommand } from './replay';
import { registerSignalCommands } from './signal';

/**
 * payrecon's operator CLI (commander). Every command has --help and --json; exit codes: 0 done,
 * 1 the operation failed (the message names the service that is down), 2 bad usage or input.
 * Configuration comes from the environment, as for the services (src/platform/config.ts).
 */

const ENVIRONMENT_HELP = `
Configuration comes from the environment (see README, "Configuration"), e.g.
  DATABASE_URL, TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TASK_QUEUE, AMQP_URL, AMQP_PREFIX,
  PROVIDER_URL (the payment simulator), POLL_LADDER, PAY_DEADLINE.

Exit codes: 0 done, 1 the operation failed, 2 bad usage or input.

Examples:
  payrecon order create --amount 1999 --pay-within 30m
  payrecon pay ord_... --duplicate 3
  payrecon order show ord_... --json
  payrecon dlq list
  payrecon replay order-ord_... --out history.json`;

export function buildProgram(ctx: Context): Command {
  const program = new Command('payrecon')
    .description(
      'operate payrecon: orders, payments, signals, workflow queries and replays, the parking queue',
    )
    .version(version, '-V, --version', 'print the version')
    .helpCommand('help [command]', 'show help for a command')
    .showHelpAfterError('(add --help for usage)')
    .showSuggestionAfterError()
    .configureOutput({
      writeOut: (text) => ctx.io.stdout.write(text),
      writeErr: (text) => ctx.io.stderr.write(text),
    })
    // Throw instead of process.exit, so runCli decides the exit code and closes connections first.
    .exitOverride()
    .addHelpText('after', ENVIRONMENT_HELP);

  registerOrderCommands(program, ctx);
  registerPayCommand(program, ctx);
  registerSignalCommands(program, ctx);
  registerQueryCommand(program, ctx);
  registerReplayCommand(program, ctx);
  registerDlqCommands(program, ctx);
  registerDiscrepancyCommands(program, ctx);
  return program;
}

/** Runs one command line (without the node and script arguments); resolves with the exit code. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const ctx = new CliContext(io);
  try {
    await buildProgram(ctx).parseAsync(argv, { from: 'user' });
    return EXIT.OK;
  } catch (error) {
    // commander has printed its own message (usage errors) or the help/version text already.
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    if (error instanceof CliError) {
      io.stderr.write(`payrecon: error: ${error.message}\n`);
      return error.exitCode;
    }
    io.stderr.write(`payrecon: error: ${describeError(error)}\n`);
    if (io.env.PAYRECON_DEBUG && error instanceof Error && error.stack) io.stderr.write(`${error.stack}\n`);
    return EXIT.FAILURE;
  } finally {
    await ctx.close();
  }
}

/** The bin entry: runs process.argv and exits with the command's code. */
export async function main(): Promise<void> {
  // `payrecon order list | head`: a reader that goes away is not an error of the command.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
    });
  }
  const code = await runCli(process.argv.slice(2), {
    env: process.env,
    stdout: process.stdout,
    stderr: process.stderr,
  });
  process.exitCode = code;
  // Every connection is closed by now; a library handle that lingers must not keep the CLI alive.
  setTimeout(() => process.exit(code), 2_000).unref();
}

if (require.main === module) {
  void main();
}
