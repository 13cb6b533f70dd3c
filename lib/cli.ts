#!/usr/bin/env node
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { BudgetGate } from '../plugin/budget-gate';
import { MODES, type Mode } from '../types/mode';
import { normalizeSymbol } from '../types/symbol';
import type { GateDecision, PermitRequest } from '../types/permit';
import { ConfigError, loadConfig, type WorkerConfig } from './config';
import { RedisKeys } from './redis/keys';
import { createLogger } from './logger';
import { PACKAGE_VERSION } from './package-version';
import { routeConsoleToLogger } from './console-capture';
import { BUDGET_LISTING_DEFAULTS, listBudgetPage, type ListedBudget } from './redis/budget-listing';
import { parseModeOverride } from './worker/mode-switch';
import { createRedisClient, redactUrl, redisOptionsFromConfig, waitForReady, type RedisClient } from './redis/client';
import { startWorkerService } from './worker/worker-service';
import { WorkerHeartbeat } from '../types/worker-heartbeat';
import { modeReport } from './mode-report';
import { EnvFileError, readEnvFile } from './env-file';
import { connectionProblem, describeConnectionProblem, trackConnectionProblems } from './redis/connection-problem';
import { READINESS_EXIT, readinessCommand, type ReadinessCommandOptions } from './commands/readiness-command';
import { replayCommand, type ReplayCommandOptions } from './commands/replay-command';
import { parseReplaySettings } from './readiness/replay-params';
import { parseWindow } from './readiness/window';

/**
 * Exit codes: 0 clean stop, 1 run-time failure (such as Redis unreachable), 2 bad configuration or
 * usage (a bad variable, env file, subcommand, option or argument), 3 the HTTP port cannot be
 * listened on (in use, or not allowed), 4 `readiness`: at least one checklist item fails.
 */
export const EXIT = Object.freeze({ ok: 0, failure: 1, config: 2, usage: 2, listen: 3, notReady: READINESS_EXIT.notReady });

/** The one line for an HTTP listen failure at start, naming HOST and PORT; undefined for other errors. */
export function listenFailure(error: unknown, host: string, port: number): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EADDRINUSE') return `cannot listen on ${host}:${port}: the port is in use (another p28-worker?); set PORT to a free port (PORT=0 picks one)`;
  if (code === 'EACCES') return `cannot listen on ${host}:${port}: permission denied (ports below 1024 need privileges); set PORT`;
  if (code === 'EADDRNOTAVAIL') return `cannot listen on ${host}:${port}: no such local address; set HOST`;
  return undefined;
}

function configOrExit(): WorkerConfig | undefined {
  try {
    return loadConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exitCode = EXIT.config;
    return undefined;
  }
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

/** How long an operator command waits for Redis before it gives up with exit code 1. */
const CLI_CONNECT_TIMEOUT_MS = 3000;

async function connect(config: WorkerConfig, profile: 'worker' | 'gate' = 'worker'): Promise<RedisClient> {
  const client = createRedisClient({ ...redisOptionsFromConfig(config, 'p28-worker:cli'), profile });
  client.on('error', () => undefined);
  trackConnectionProblems(client);
  try {
    await waitForReady(client, CLI_CONNECT_TIMEOUT_MS);
  } catch (error) {
    const problem = connectionProblem(client);
    client.disconnect();
    throw new Error(describeConnectionProblem(redactUrl(config.redisUrl), problem, (error as Error).message), { cause: error });
  }
  return client;
}

/**
 * Runs an operator command against Redis: loads the configuration (exit 2 when it is bad),
 * connects (exit 1 with the reason when Redis cannot be reached) and always disconnects.
 */
async function withRedis(run: (client: RedisClient, config: WorkerConfig) => Promise<void>, profile: 'worker' | 'gate' = 'worker'): Promise<void> {
  const config = configOrExit();
  if (!config) return;
  let client: RedisClient;
  try {
    client = await connect(config, profile);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exitCode = EXIT.failure;
    exitWhenIdle();
    return;
  }
  try {
    await run(client, config);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exitCode = EXIT.failure;
  } finally {
    client.disconnect();
    exitWhenIdle();
  }
}

/**
 * Ends an operator command once its output is written. A client that gave up connecting can leave
 * ioredis's reconnect timer behind for a few seconds; the timer is unref'd, so it ends nothing early.
 */
function exitWhenIdle(): void {
  setTimeout(() => process.exit(), 200).unref();
}

const usd = (value: unknown): string => {
  const n = Number(value);
  return Number.isFinite(n) ? n.toFixed(2) : '-';
};

/** Renders rows as left-aligned columns (at least `minWidths` wide), under a header unless it is left out. */
function table(header: readonly string[], rows: readonly string[][], options: { minWidths?: readonly number[]; withHeader?: boolean } = {}): string {
  const widths = header.map((h, i) => Math.max(h.length, options.minWidths?.[i] ?? 0, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  const lines = options.withHeader === false ? rows.map(line) : [line(header), ...rows.map(line)];
  return lines.join('\n') + '\n';
}

/** Column widths that hold the usual symbols and amounts, so that the pages of one table line up. */
const BUDGET_TABLE_WIDTHS = [14, 12, 14, 15, 8, 7, 6];

/**
 * The `budgets` table (or one page of it, without the header): one row per budget hash, its age
 * from its `timestamp`. POSITION says whether
 * the position is known (`ok`) or not (`stale`, `unknown`, `invalid`, or `none` for a hash without
 * position fields, as the upstream service wrote them); an unknown position shows no notional.
 */
export function budgetTable(budgets: readonly ListedBudget[], nowMs: number, withHeader = true): string {
  const rows = budgets.map(({ symbol, fields }) => {
    const ts = Number(fields.timestamp);
    const age = Number.isFinite(ts) ? `${Math.max(0, Math.round(nowMs / 1000 - ts))}s` : '-';
    const position = fields.position_amt === undefined ? 'none' : (fields.position_status ?? 'ok');
    const known = position === 'ok';
    return [symbol, usd(fields.budget_usd), known ? usd(fields.position_notional_usd) : '-', known ? usd(fields.over_budget_usd) : '-', position, fields.mode ?? '-', age];
  });
  return table(['SYMBOL', 'BUDGET_USD', 'NOTIONAL_USD', 'OVER_BUDGET_USD', 'POSITION', 'MODE', 'AGE'], rows, { minWidths: BUDGET_TABLE_WIDTHS, withHeader });
}

/** How many budget hashes say each mode, read a page at a time so memory stays bounded. */
async function countHashModes(client: RedisClient, keys: RedisKeys): Promise<{ shadow: number; enforce: number }> {
  const counts = { shadow: 0, enforce: 0 };
  let cursor: string | undefined;
  do {
    const page = await listBudgetPage(client, keys, { cursor, limit: BUDGET_LISTING_DEFAULTS.maxLimit });
    for (const { fields } of page.budgets) if (fields.mode === 'shadow' || fields.mode === 'enforce') counts[fields.mode] += 1;
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
  return counts;
}

/**
 * Prints every budget hash (or only the over-budget ones), a page of `--limit` (default 500) at a
 * time as it is read, so memory stays bounded whatever the book; reads only.
 */
async function budgetsCommand(options: { over?: boolean; limit?: number }): Promise<void> {
  await withRedis(async (client, config) => {
    const keys = new RedisKeys(config.keyPrefix);
    let cursor: string | undefined;
    let shown = 0;
    do {
      const page = await listBudgetPage(client, keys, { cursor, limit: options.limit, over: options.over });
      if (page.budgets.length > 0) process.stdout.write(budgetTable(page.budgets, Date.now(), shown === 0));
      shown += page.budgets.length;
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined);
    if (shown === 0) process.stdout.write(options.over ? 'no symbol is over budget\n' : 'no budget hashes (is the worker running?)\n');
  });
}

/** A decision in words: the verdict, the reason and the numbers behind it. */
export function describeDecision(plan: PermitRequest, decision: GateDecision): string {
  const verdict = !decision.allow ? 'BLOCK' : decision.failOpen ? 'ALLOW (fail-open)' : 'ALLOW';
  const why = decision.detail ? `${decision.reason}: ${decision.detail}` : decision.reason;
  const lines = [`${plan.symbol} ${plan.side ?? ''} ${plan.qty ?? ''}`.replace(/\s+/g, ' ').trim() + `: ${verdict} (${why})`];
  const numbers = [
    `mode ${decision.mode ?? 'none'}`,
    decision.budgetUsd !== undefined ? `budget ${usd(decision.budgetUsd)} USD` : undefined,
    decision.positionNotionalUsd !== undefined ? `position ${usd(decision.positionNotionalUsd)} USD` : undefined,
    decision.projectedNotionalUsd !== undefined ? `after the plan ${usd(decision.projectedNotionalUsd)} USD` : undefined,
  ].filter((part) => part !== undefined);
  lines.push(numbers.join(', '));
  if (decision.wouldBlock && decision.allow) lines.push('would block under enforce; allowed because the hash says shadow');
  return lines.join('\n') + '\n';
}

/** Asks the budget gate (the same code the Governor embeds) about one plan; reads only. */
async function checkCommand(symbol: string, options: { side: 'BUY' | 'SELL'; qty: number; notional?: number; action: string }): Promise<void> {
  await withRedis(async (client, config) => {
    // An operator's terminal may be farther from Redis than the Governor: a roomier time limit.
    // Not logged: an operator's question is not a Governor's decision (readiness counts those).
    const gate = new BudgetGate({ redis: client, keyPrefix: config.keyPrefix, timeoutMs: 1000, decisionLogMaxLen: 0 });
    try {
      const plan: PermitRequest = { planId: `p28-worker-check-${process.pid}`, symbol, action: options.action, side: options.side, qty: options.qty };
      if (options.notional !== undefined) plan.notionalUsd = options.notional;
      process.stdout.write(describeDecision(plan, await gate.evaluate(plan)));
    } finally {
      await gate.close();
    }
  }, 'gate');
}

function pageLimit(raw: string): number {
  const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isInteger(value) || value < 1 || value > BUDGET_LISTING_DEFAULTS.maxLimit) throw new InvalidArgumentError(`expected a whole number in 1..${BUDGET_LISTING_DEFAULTS.maxLimit}`);
  return value;
}

function positiveNumber(raw: string): number {
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new InvalidArgumentError('expected a number > 0');
  return value;
}

/** A symbol as an operator types it: `btcusdt` is `BTCUSDT`. */
function symbolArgument(raw: string): string {
  const symbol = normalizeSymbol(raw);
  if (symbol === undefined) throw new InvalidArgumentError('expected 1-32 letters or digits, such as BTCUSDT');
  return symbol;
}

/** Shows, sets or clears the run-time mode override; the only operator command that writes. */
async function modeCommand(mode: Mode | undefined, options: { clear?: boolean }): Promise<void> {
  if (mode && options.clear) {
    process.stderr.write('give a mode or --clear, not both\n');
    process.exitCode = EXIT.config;
    return;
  }
  await withRedis(async (client, config) => {
    const keys = new RedisKeys(config.keyPrefix);
    if (mode) {
      await client.set(keys.modeOverride, mode);
      process.stdout.write(
        `override set: ${keys.modeOverride} = ${mode}; every worker applies it within one cycle (${config.computeIntervalSec} s).\n` +
          'It lasts until it is cleared (p28-worker mode --clear) or until a worker process starts: a starting worker clears it and runs on its P28_MODE.\n',
      );
      return;
    }
    if (options.clear) {
      await client.del(keys.modeOverride);
      process.stdout.write(`override cleared: the mode follows P28_MODE of each worker from its next cycle (here P28_MODE=${config.mode})\n`);
      return;
    }
    const [override, heartbeat, tail, listed] = await Promise.all([
      client.get(keys.modeOverride),
      client.hgetall(keys.workerHeartbeat),
      client.xrevrange(keys.modeAuditStream, '+', '-', 'COUNT', 1),
      countHashModes(client, keys),
    ]);
    const hashModes = listed;
    const entry = tail[0];
    const lastAudit = entry ? Object.fromEntries(entry[1].flatMap((v, i, all) => (i % 2 === 0 ? [[v, all[i + 1] ?? '']] : []))) : undefined;
    const report = modeReport({
      override,
      heartbeat: WorkerHeartbeat.safeParse(heartbeat).data,
      hashModes,
      lastAudit,
      localMode: process.env.P28_MODE === undefined ? undefined : parseModeOverride(process.env.P28_MODE),
      overrideKey: keys.modeOverride,
      nowMs: Date.now(),
    });
    process.stdout.write(report.join('\n') + '\n');
  });
}

/** A usage error found before Redis is asked: the message (it names the option) and exit code 2. */
function usageError(run: () => void): boolean {
  try {
    run();
    return false;
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exitCode = EXIT.usage;
    return true;
  }
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
