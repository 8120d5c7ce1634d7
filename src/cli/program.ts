import { Command, CommanderError } from 'commander';
import { version } from '../../package.json';
import { CliContext, CliError, type CliIo, describeError, EXIT } from './context';

/**
 * What a command-line program built on CliContext shares (payrecon's operator CLI, and the payment
 * simulator's own CLI in the rig): commander set up to write to the context's streams and to throw
 * instead of exiting, one error report, the exit codes, and the bin entry.
 */

export function createProgram(
  ctx: CliContext,
  name: string,
  description: string,
  helpAfter: string,
): Command {
  return (
    new Command(name)
      .description(description)
      .version(version, '-V, --version', 'print the version')
      .helpCommand('help [command]', 'show help for a command')
      .showHelpAfterError('(add --help for usage)')
      .showSuggestionAfterError()
      .configureOutput({
        writeOut: (text) => ctx.io.stdout.write(text),
        writeErr: (text) => ctx.io.stderr.write(text),
      })
      // Throw instead of process.exit, so runProgram decides the exit code and closes connections first.
      .exitOverride()
      .addHelpText('after', helpAfter)
  );
}

export type ProgramRunner = (argv: string[], io: CliIo) => Promise<number>;

/** Runs one command line (without the node and script arguments); resolves with the exit code. */
export async function runProgram(
  build: (ctx: CliContext) => Command | Promise<Command>,
  argv: string[],
  io: CliIo,
): Promise<number> {
  const ctx = new CliContext(io);
  let name = 'payrecon';
  try {
    const program = await build(ctx);
    name = program.name();
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.OK;
  } catch (error) {
    // commander has printed its own message (usage errors) or the help/version text already.
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    if (error instanceof CliError) {
      io.stderr.write(`${name}: error: ${error.message}\n`);
      return error.exitCode;
    }
    io.stderr.write(`${name}: error: ${describeError(error)}\n`);
    if (io.env.PAYRECON_DEBUG && error instanceof Error && error.stack) io.stderr.write(`${error.stack}\n`);
    return EXIT.FAILURE;
  } finally {
    await ctx.close();
  }
}

/** A bin entry: runs process.argv and exits with the command's code. */
export async function runMain(run: ProgramRunner): Promise<void> {
  // `payrecon order list | head`: a reader that goes away is not an error of the command.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
    });
  }
  const code = await run(process.argv.slice(2), {
    env: process.env,
    stdout: process.stdout,
    stderr: process.stderr,
  });
  process.exitCode = code;
  // Every connection is closed by now; a library handle that lingers must not keep the CLI alive.
  setTimeout(() => process.exit(code), 2_000).unref();
}
