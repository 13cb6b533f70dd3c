#!/usr/bin/env node
import { Argument, Command, CommanderError, Option } from 'commander';
import { MODES } from '../types/mode';
import { createLogger } from './logger';
import { PACKAGE_VERSION } from './package-version';
import { routeConsoleToLogger } from './console-capture';
import { BUDGET_LISTING_DEFAULTS } from './redis/budget-listing';
import { startWorkerService } from './worker/worker-service';
import { EnvFileError, readEnvFile } from './env-file';
import { readinessCommand, type ReadinessCommandOptions } from './commands/readiness-command';
import { replayCommand, type ReplayCommandOptions } from './commands/replay-command';
import { budgetsCommand, pageLimit } from './commands/budgets-command';
import { checkCommand, positiveNumber, symbolArgument } from './commands/check-command';
import { modeCommand } from './commands/mode-command';
import { EXIT } from './commands/exit-codes';
import { configOrExit, usageError, withRedis } from './commands/with-redis';
import { parseReplaySettings } from './readiness/replay-params';
import { parseWindow } from './readiness/window';

export { EXIT } from './commands/exit-codes';
export { budgetTable } from './commands/budgets-command';
export { describeDecision } from './commands/check-command';

/** The one line for an HTTP listen failure at start, naming HOST and PORT; undefined for other errors. */
export function listenFailure(error: unknown, host: string, port: number): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EADDRINUSE') return `cannot listen on ${host}:${port}: the port is in use (another p28-worker?); set PORT to a free port (PORT=0 picks one)`;
  if (code === 'EACCES') return `cannot listen on ${host}:${port}: permission denied (ports below 1024 need privileges); set PORT`;
  if (code === 'EADDRNOTAVAIL') return `cannot listen on ${host}:${port}: no such local address; set HOST`;
  return undefined;
}

/** Runs the worker until SIGTERM or SIGINT, then shuts down gracefully and exits 0. */
async function runWorker(): Promise<void> {
  const config = configOrExit();
  if (!config) return;
  const logger = createLogger(config.logLevel);
  routeConsoleToLogger(logger);
  let service: Awaited<ReturnType<typeof startWorkerService>>;
  try {
    service = await startWorkerService(config, { logger });
  } catch (error) {
    const listen = listenFailure(error, config.host, config.port);
    if (listen !== undefined) {
      process.stderr.write(`${listen}\n`);
      process.exit(EXIT.listen);
    }
    logger.fatal({ err: error }, 'could not start');
    process.exit(EXIT.failure);
  }
  const shutdown = (signal: NodeJS.Signals): void => {
    logger.info({ signal }, 'shutdown requested');
    // A second signal while shutting down ends the process at once.
    process.once(signal, () => process.exit(EXIT.failure));
    service.stop().then(
      () => process.exit(EXIT.ok),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(EXIT.failure);
      },
    );
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

const stdout = (text: string): void => void process.stdout.write(text);

/** Judges the pre-activation checklist over the window; exit 0 only when every item passes. */
async function readinessAction(options: ReadinessCommandOptions): Promise<void> {
  if (usageError(() => parseWindow(options.window))) return;
  await withRedis(async (client, config) => {
    process.exitCode = await readinessCommand(client, config, options, stdout);
  });
}

/** Re-judges the window's logged decisions under candidate parameters; reads only. */
async function replayAction(options: ReplayCommandOptions): Promise<void> {
  const config = configOrExit();
  if (!config || usageError(() => (parseWindow(options.window), parseReplaySettings(options.set, config.budget)))) return;
  await withRedis(async (client, loaded) => {
    await replayCommand(client, loaded, options, stdout);
  });
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** The `p28-worker` command line. */
export function buildCli(): Command {
  const program = new Command('p28-worker')
    .description('P2.8 Portfolio Risk Governor budget worker: computes per-symbol position budgets and writes them to Redis. Configured by environment variables.')
    .version(PACKAGE_VERSION, '-V, --version', 'print the version and exit')
    // Not `--env-file`: Node 20 claims that option wherever it appears on a command line.
    .option('--env <file>', 'read variables from this env file (KEY=value lines, as systemd EnvironmentFile= reads them); they override the environment')
    // Usage errors end with a CommanderError the caller maps to EXIT.usage, in every subcommand.
    .exitOverride()
    .hook('preAction', loadEnvFileOption)
    .action(runWorkerOrRejectOperands);
  program
    .command('budgets')
    .description('print every budget hash: symbol, budget, position notional, amount over budget, mode and age (reads only)')
    .option('--over', 'only symbols whose position is over budget')
    .option('--limit <n>', `hashes read per page (1-${BUDGET_LISTING_DEFAULTS.maxLimit}, default ${BUDGET_LISTING_DEFAULTS.limit})`, pageLimit)
    .action(budgetsCommand);
  program
    .command('check')
    .description("print the budget gate's decision for a plan, and why (reads only; the same gate code the Governor runs)")
    .argument('<symbol>', 'the symbol, such as BTCUSDT', symbolArgument)
    .addOption(new Option('--side <side>', 'BUY or SELL').choices(['BUY', 'SELL']).makeOptionMandatory())
    .requiredOption('--qty <n>', 'plan size in base units', positiveNumber)
    .option('--notional <usd>', 'plan size in USD (used when the hash has no price)', positiveNumber)
    .option('--action <action>', 'plan action; a close action (CLOSE, PARTIAL_50, ...) is always allowed', 'OPEN')
    .action(checkCommand);
  program
    .command('mode')
    .description('show the effective mode and its source, or set the run-time override (shadow|enforce) or --clear it; workers apply it within one cycle, and a starting worker clears it')
    .addArgument(new Argument('[mode]', 'the mode to switch to').choices(MODES))
    .option('--clear', 'delete the override, so every worker follows its P28_MODE')
    .action(modeCommand);
  program
    .command('readiness')
    .description("judge the guide's pre-activation checklist from the records of the window (cycles, decisions, violations, hashes, mode); exit 0 only when every item passes, 4 when one fails (reads only)")
    .option('--window <duration>', 'how far back to look: 30m, 24h, 7d', '24h')
    .option('--json', 'print the report as JSON')
    .option('--ledger', 'print an OPS ledger entry (markdown) with the evidence')
    .action(readinessAction);
  program
    .command('replay')
    .description("judge the window's logged decisions again under candidate parameters, budgets recomputed from their logged inputs (reads only)")
    .option('--window <duration>', 'how far back to look: 30m, 24h, 7d', '24h')
    .option('--set <NAME=VALUE>', 'a candidate parameter: BASE_RISK_PCT, ALPHA_HEAT, BETA_CLUSTER, GAMMA_VOL, MIN_BUDGET_K, MAX_BUDGET_K, VIOLATION_WINDOW_MS, STALE_AFTER_MS (repeatable)', collect, [])
    .option('--json', 'print the summary as JSON')
    .action(replayAction);
  // Set after the subcommands, which must keep rejecting extra arguments: at the top level an
  // operand is a mistyped subcommand, reported as such by the worker's action.
  program.allowExcessArguments(true);
  return program;
}

/** Loads `--env <file>` into the environment before any action reads it; a bad file is a usage error. */
function loadEnvFileOption(thisCommand: Command): void {
  const path = thisCommand.opts<{ env?: string }>().env;
  if (path === undefined) return;
  try {
    Object.assign(process.env, readEnvFile(path));
  } catch (error) {
    if (!(error instanceof EnvFileError)) throw error;
    thisCommand.error(`error: ${error.message}`, { code: error.code, exitCode: EXIT.usage });
  }
}

/** The worker runs when no subcommand is given; any operand is an unknown subcommand. */
async function runWorkerOrRejectOperands(_options: unknown, command: Command): Promise<void> {
  // commander's own message, with its "Did you mean ...?" suggestion.
  if (command.args.length > 0) (command as unknown as { unknownCommand(): void }).unknownCommand();
  await runWorker();
}

/** Runs the command line: usage errors exit with EXIT.usage, help and --version with 0. */
export async function main(argv: readonly string[]): Promise<void> {
  try {
    await buildCli().parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // commander has already printed its `error: ...` line (or the help, or the version).
      process.exit(error.exitCode === 0 ? EXIT.ok : EXIT.usage);
    }
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exit(EXIT.failure);
  }
}

if (require.main === module) void main(process.argv);
