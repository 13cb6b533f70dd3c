import { hostname } from 'node:os';
import { z } from 'zod';
import { MODES } from '../types/mode';
import { integerString, numericString } from '../types/wire-number';
import type { BudgetParams } from './engine/compute-budget';
import { LOG_LEVELS } from './logger';
import { OptionsError, type OptionIssue } from './options-error';
import { DEFAULT_INPUT_FAMILIES, DEFAULT_KEY_PREFIX, type InputFamilies } from './redis/keys';
import { apiToken, choice, family, flag, hostPortList, readableFile, redisUrl, symbolList, text, urlWithScheme } from './config-values';

export type { LogLevel } from './logger';

/**
 * One environment variable: its name, its default as written in an env file (undefined = unset),
 * what it means (markdown; the docs table and the example env file are generated from it), the
 * `WorkerConfig` field it fills (`budget.<field>` for the engine's `BudgetParams`) and its schema,
 * whose output type is the field's type.
 */
export interface VariableSpec<K extends string = string, T = unknown, D extends string | undefined = string | undefined> {
  env: string;
  default: D;
  description: string;
  key: K;
  schema: z.ZodType<T, string>;
  /**
   * The value while unset and without a default: `list` is an empty list, `derived` is computed by
   * `loadConfig` from other variables; otherwise the field is undefined.
   */
  unset?: 'list' | 'derived';
  /** How the docs show the default of a `derived` variable. */
  docDefault?: string;
}

const spec = <K extends string, T, D extends string | undefined>(
  env: string,
  key: K,
  defaultValue: D,
  schema: z.ZodType<T, string>,
  description: string,
): VariableSpec<K, T, D> => ({ env, key, default: defaultValue, schema, description });

/** A comma list: unset means empty. */
const list = <K extends string, T extends unknown[]>(env: string, key: K, schema: z.ZodType<T, string>, description: string) => ({
  ...spec(env, key, undefined, schema, description),
  unset: 'list' as const,
});

/** A variable whose default `loadConfig` computes (shown in the docs as `docDefault`). */
const derived = <K extends string, T>(env: string, key: K, docDefault: string | undefined, schema: z.ZodType<T, string>, description: string) => ({
  ...spec(env, key, undefined, schema, description),
  unset: 'derived' as const,
  docDefault,
});

/**
 * Every environment variable the worker reads, in the order the README and the example env file
 * list them. An empty value counts as unset, so `VAR=` in an env file means "use the default".
 */
export const CONFIG_VARIABLES = Object.freeze([
  spec('P28_MODE', 'mode', 'shadow', choice(MODES), '`shadow` or `enforce`: the mode written into budget hashes at start (switchable at run time)'),
  spec('BASE_RISK_PCT', 'budget.baseRiskPct', '0.02', numericString({ min: 0, max: 1, exclusiveMin: true }), 'share of equity per position, in (0,1]'),
  spec('ALPHA_HEAT', 'budget.alphaHeat', '0.4', numericString({ min: 0, max: 1 }), 'stress weight of portfolio heat, in [0,1]'),
  spec('BETA_CLUSTER', 'budget.betaCluster', '0.4', numericString({ min: 0, max: 1 }), 'stress weight of cluster stress, in [0,1]'),
  spec('GAMMA_VOL', 'budget.gammaVol', '0.2', numericString({ min: 0, max: 1 }), 'stress weight of the volatility regime, in [0,1]'),
  spec('MIN_BUDGET_K', 'budget.minBudgetUsd', '500', numericString({ min: 0 }), 'lowest budget in USD (the K is historical)'),
  spec('MAX_BUDGET_K', 'budget.maxBudgetUsd', '10000', numericString({ min: 0 }), 'highest budget in USD; must be >= `MIN_BUDGET_K`'),
  spec('STALE_SEC', 'staleSec', '30', numericString({ min: 0, exclusiveMin: true }), 'portfolio state older than this (seconds) is stale'),
  spec('MAX_LKG_AGE_SEC', 'maxLkgAgeSec', '900', numericString({ min: 0 }), 'how long a last-known-good portfolio state or heat may stand in (seconds); `0` = never'),
  spec('BUDGET_HASH_TTL_SEC', 'budgetHashTtlSec', '60', integerString({ min: 1 }), 'TTL of each budget hash (whole seconds); must exceed the compute interval'),
  spec('BUDGET_COMPUTE_INTERVAL_SEC', 'computeIntervalSec', '5', numericString({ min: 0.05 }), 'worker cycle period in seconds'),
  spec('REDIS_URL', 'redisUrl', 'redis://127.0.0.1:6379', redisUrl, '`redis://` or `rediss://` (TLS) URL with user, password and db; passwords are never logged'),
  list('REDIS_SENTINELS', 'redisSentinels', hostPortList, '`host:port,...` of Redis Sentinels; `REDIS_URL` then gives credentials, TLS and db'),
  spec('REDIS_SENTINEL_NAME', 'redisSentinelName', 'mymaster', text(/^\S+$/, 'a master name'), 'the Sentinel master name'),
  spec('REDIS_SENTINEL_PASSWORD', 'redisSentinelPassword', undefined, z.string(), 'password of the Sentinels when they have their own (Sentinel `requirepass`); default: the password of `REDIS_URL`'),
  list('REDIS_CLUSTER_NODES', 'redisClusterNodes', hostPortList, '`host:port,...` seed nodes of a Redis Cluster; `REDIS_URL` then gives credentials and TLS'),
  spec('REDIS_TLS_CA_FILE', 'redisTlsCaFile', undefined, readableFile, 'PEM file of the CA(s) that signed the Redis server certificate (a private CA); needs a `rediss://` `REDIS_URL`'),
  spec('REDIS_TLS_CERT_FILE', 'redisTlsCertFile', undefined, readableFile, 'PEM client certificate for servers with `tls-auth-clients yes` (mutual TLS); needs `REDIS_TLS_KEY_FILE`'),
  spec('REDIS_TLS_KEY_FILE', 'redisTlsKeyFile', undefined, readableFile, 'PEM private key of `REDIS_TLS_CERT_FILE`'),
  spec('P28_KEY_PREFIX', 'keyPrefix', DEFAULT_KEY_PREFIX, text(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, "_", "." or "-"'), 'first segment of every Redis key read or written'),
  spec('PORT', 'port', '8049', integerString({ min: 0, max: 65535 }), 'port of the HTTP API: `/health`, `/metrics`, `/v1/decisions`, ... (`0` picks a free one)'),
  spec('HOST', 'host', '127.0.0.1', text(/^\S+$/, 'a host name or address'), 'address the HTTP API listens on'),
  spec('HEAT_GATE_METRICS_URL', 'heatGateMetricsUrl', 'http://127.0.0.1:8056/metrics', urlWithScheme(['http:', 'https:']), 'P2.6 Heat Gate exposition text with the gauge `p26_heat_value`'),
  spec('HEAT_FETCH_TIMEOUT_MS', 'heatFetchTimeoutMs', '1000', integerString({ min: 1, max: 60000 }), 'time limit of one heat fetch'),
  spec('HEAT_MAX_BYTES', 'heatMaxBytes', '1048576', integerString({ min: 1024, max: 67108864 }), 'largest P2.6 response read; a longer one is cut off (the request aborted) and counts as a heat fallback'),
  spec('LOG_LEVEL', 'logLevel', 'info', choice(LOG_LEVELS), '`fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`; JSON lines on stdout'),
  spec('LEASE_TTL_MS', 'leaseTtlMs', '15000', integerString({ min: 1000 }), 'leader lease among replicas; a stand-by takes over within about this long after the leader dies'),
  list('P28_ENFORCE_SYMBOLS', 'enforceSymbols', symbolList, 'canary: when set and the mode is `enforce`, only these symbols get `mode=enforce`, the rest `shadow`'),
  spec('VIOLATION_STREAM_MAXLEN', 'violationStreamMaxLen', '100000', integerString({ min: 100 }), 'approximate length cap of the violation stream'),
  list('P28_SYMBOLS', 'extraSymbols', symbolList, 'symbols that always get a budget hash (comma list), besides those with a position snapshot or a market hash'),
  spec('P28_MAX_SYMBOLS', 'maxSymbols', '20000', integerString({ min: 1 }), 'cap on the symbol universe; held symbols are kept first, then `P28_SYMBOLS`, then tracked ones; the rest get no budget, are counted in `p28_symbols_over_cap_total` and logged'),
  spec('VIOLATION_REPUBLISH_SEC', 'violationRepublishSec', '10', numericString({ min: 0, exclusiveMin: true }), 'how often (seconds) a symbol that stays over budget is announced again on the violation stream; a change of more than 1 % is announced at once'),
  derived('HEALTH_MAX_BUDGET_AGE_SEC', 'healthMaxBudgetAgeSec', undefined, numericString({ min: 0, exclusiveMin: true }), '`/health` is `degraded` when no replica has written budgets for this long (seconds); unset: three compute intervals, at least 15'),
  spec('P28_API_TOKEN', 'apiToken', undefined, apiToken, 'bearer token the [HTTP API](http-api.md) requires on every endpoint but `/health` and `/metrics`; 16-512 printable characters; unset = no auth. Never logged nor echoed, not even in a config error'),
  spec('P28_TEST_MODE', 'testMode', '0', flag, '`1` enables `POST /test/inject_portfolio_state` (overwrites the portfolio state; for the upstream proof scripts, never in production)'),
  spec('P28_CYCLE_THREAD', 'cycleThread', '1', flag, '`1` runs the budget cycle (loop, lease, heat reads, its own Redis connection) in a thread of its own, so that its reads, compute, writes and garbage collection run beside `POST /v1/decisions`, `/health` and `/metrics` instead of between them; `0` runs it on the event loop of the HTTP API. See [worker.md](worker.md#decisions-while-the-worker-computes)'),
  spec('RESERVATION_TTL_SEC', 'reservationTtlSec', '30', numericString({ min: 0, max: 3600 }), 'how long (seconds) a plan allowed by `POST /v1/decisions` holds its projected increase against the headroom at most, unless released or filled; `0` reserves nothing. See [reservations.md](reservations.md)'),
  spec('DECISION_LOG_MAXLEN', 'decisionLogMaxLen', '1000000', integerString({ min: 0, max: 1e9 }), 'approximate length bound of the decision log `quantum:stream:p28.decisions` written by the HTTP API\'s gate (XADD MAXLEN ~; the plugin\'s option is `decisionLogMaxLen`); 0 turns the log off. See [decision-log.md](decision-log.md)'),
  spec('CYCLE_HISTORY_MAXLEN', 'cycleHistoryMaxLen', '100000', integerString({ min: 0, max: 1e9 }), 'approximate length bound of the cycle history `quantum:stream:p28.cycles`, one entry per leader cycle (about 5.8 days at 5 s); 0 turns it off'),
  derived('P28_INSTANCE_ID', 'instanceId', '<hostname>-<pid>', text(/^\S{1,128}$/, 'an id without spaces'), 'this replica\'s name in the lease and in logs'),
  spec('POSITION_STALE_SEC', 'positionStaleSec', '60', numericString({ min: 0, exclusiveMin: true }), 'a position whose `ts_epoch` is older than this (seconds) is unknown, never flat'),
  spec('MARKET_STATE_STALE_SEC', 'marketStateStaleSec', '600', numericString({ min: 0, exclusiveMin: true }), 'a live market state whose `ts_timestamp` is older than this (seconds) is not used for the vol regime'),
  spec('POSITIONS_FEED_TOLERANCE_PCT', 'positionsFeedTolerancePct', '5', numericString({ min: 0, max: 100 }), 'the positions feed is incomplete when its notional falls short of the portfolio state\'s `positions_notional_usd` by more than this percent (and 1 USD)'),
  spec('P28_PORTFOLIO_KEY', 'inputFamilies.portfolio', DEFAULT_INPUT_FAMILIES.portfolio, family(false), 'the portfolio state hash, after the key prefix'),
  spec('P28_POSITIONS_FAMILY', 'inputFamilies.positions', DEFAULT_INPUT_FAMILIES.positions, family(false), 'key family of positions (P3.3), between the key prefix and the symbol'),
  spec('P28_LEGACY_POSITIONS_FAMILY', 'inputFamilies.legacyPositions', DEFAULT_INPUT_FAMILIES.legacyPositions, family(true), 'legacy key family of positions, also read (the fresher position counts); `none` = not read'),
  spec('P28_MARKET_STATE_FAMILY', 'inputFamilies.marketState', DEFAULT_INPUT_FAMILIES.marketState, family(false), 'key family of the market state publisher (`sigma` of 1-minute returns)'),
  spec('P28_LEGACY_MARKET_FAMILY', 'inputFamilies.legacyMarket', DEFAULT_INPUT_FAMILIES.legacyMarket, family(true), 'legacy key family of market state (`vol_regime`, `sigma`, `cluster_id`), also read, its `vol_regime` wins; `none` = not read'),
  spec('P28_CLUSTER_STRESS_FAMILY', 'inputFamilies.clusterStress', DEFAULT_INPUT_FAMILIES.clusterStress, family(false), 'key family of cluster stress, between the key prefix and the cluster id'),
] as const);

type Variable = (typeof CONFIG_VARIABLES)[number];
type ValueOf<V> = V extends VariableSpec<string, infer T, infer D> ? (D extends string ? T : V extends { unset: 'list' | 'derived' } ? T : T | undefined) : never;
type Fields = { [V in Variable as V['key'] extends `${string}.${string}` ? never : V['key']]: ValueOf<V> };
/** The fields of the rows whose key is `<group>.<field>`. */
type Group<G extends string> = { [V in Variable as V['key'] extends `${G}.${infer F}` ? F : never]: ValueOf<V> };

/**
 * The worker's validated configuration, inferred from `CONFIG_VARIABLES`: one field per variable
 * (its name and meaning in the table), the engine's parameters under `budget` and the input key
 * families under `inputFamilies`. Units are in the names.
 */
export type WorkerConfig = Fields & { budget: BudgetParams; inputFamilies: InputFamilies };

// The grouped rows of the table fill exactly the engine's BudgetParams and the key module's
// InputFamilies: a missing or extra one fails the build.
type Same<A, B> = [A, B] extends [B, A] ? true : never;
const groupsMatch: [Same<Group<'budget'>, BudgetParams>, Same<Group<'inputFamilies'>, InputFamilies>] = [true, true];
void groupsMatch;

/** One invalid environment variable (`field`) and what was wrong with it. */
export type ConfigIssue = OptionIssue;

/** Bad configuration: every invalid variable, each with what was wrong. */
export class ConfigError extends OptionsError {
  readonly code = 'P28_CONFIG';
  constructor(issues: readonly ConfigIssue[]) {
    super('invalid configuration', issues);
    this.name = 'ConfigError';
  }
}

/** HEALTH_MAX_BUDGET_AGE_SEC when unset: three cycles may be missed before /health says degraded. */
const defaultHealthMaxBudgetAgeSec = (computeIntervalSec: number): number => Math.max(15, 3 * computeIntervalSec);

/**
 * Reads and validates the worker's configuration from `env` (normally `process.env`).
 * Throws one `ConfigError` that names every bad variable, so one run shows all of them.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): WorkerConfig {
  const issues: ConfigIssue[] = [];
  const out: Record<string, unknown> = {};
  const nested: Record<'budget' | 'inputFamilies', Record<string, unknown>> = { budget: {}, inputFamilies: {} };
  for (const v of CONFIG_VARIABLES) {
    const given = env[v.env];
    const raw = given === undefined || given.trim() === '' ? v.default : given;
    if (raw === undefined) {
      if ('unset' in v && v.unset === 'list') out[v.key] = [];
      continue;
    }
    const parsed = v.schema.safeParse(raw);
    const [group, field] = v.key.split('.') as [string, string | undefined];
    if (!parsed.success) issues.push({ field: v.env, message: parsed.error.issues.map((i) => i.message).join('; ') });
    else if (field !== undefined) nested[group as keyof typeof nested][field] = parsed.data;
    else out[v.key] = parsed.data;
  }
  out.budget = nested.budget;
  out.inputFamilies = nested.inputFamilies;
  const config = out as unknown as WorkerConfig;
  const bad = new Set(issues.map((i) => i.field));
  if (!bad.has('MIN_BUDGET_K') && !bad.has('MAX_BUDGET_K') && config.budget.minBudgetUsd > config.budget.maxBudgetUsd) {
    issues.push({
      field: 'MIN_BUDGET_K',
      message: `must be <= MAX_BUDGET_K (${config.budget.maxBudgetUsd}), got ${config.budget.minBudgetUsd}`,
    });
  }
  if (!bad.has('BUDGET_HASH_TTL_SEC') && !bad.has('BUDGET_COMPUTE_INTERVAL_SEC') && config.budgetHashTtlSec <= config.computeIntervalSec) {
    issues.push({
      field: 'BUDGET_HASH_TTL_SEC',
      message: `must exceed BUDGET_COMPUTE_INTERVAL_SEC (${config.computeIntervalSec}) or budgets expire between cycles, got ${config.budgetHashTtlSec}`,
    });
  }
  if (config.redisSentinels?.length > 0 && config.redisClusterNodes?.length > 0) {
    issues.push({ field: 'REDIS_CLUSTER_NODES', message: 'cannot be combined with REDIS_SENTINELS' });
  }
  const tlsFiles = ['REDIS_TLS_CA_FILE', 'REDIS_TLS_CERT_FILE', 'REDIS_TLS_KEY_FILE'].filter((v) => (env[v] ?? '').trim() !== '');
  if (tlsFiles.length > 0 && !bad.has('REDIS_URL') && !/^rediss:/i.test(config.redisUrl)) {
    issues.push({ field: tlsFiles[0]!, message: 'needs a rediss:// REDIS_URL (TLS is switched on by the URL scheme)' });
  }
  if ((config.redisTlsCertFile === undefined) !== (config.redisTlsKeyFile === undefined) && !bad.has('REDIS_TLS_CERT_FILE') && !bad.has('REDIS_TLS_KEY_FILE')) {
    issues.push({ field: config.redisTlsCertFile === undefined ? 'REDIS_TLS_CERT_FILE' : 'REDIS_TLS_KEY_FILE', message: 'REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE go together' });
  }
  const families = config.inputFamilies;
  if (families.legacyPositions !== undefined && families.legacyPositions === families.positions) {
    issues.push({ field: 'P28_LEGACY_POSITIONS_FAMILY', message: `must differ from P28_POSITIONS_FAMILY (${families.positions})` });
  }
  if (families.legacyMarket !== undefined && families.legacyMarket === families.marketState) {
    issues.push({ field: 'P28_LEGACY_MARKET_FAMILY', message: `must differ from P28_MARKET_STATE_FAMILY (${families.marketState})` });
  }
  if (issues.length > 0) throw new ConfigError(issues);
  config.instanceId ??= `${hostname()}-${process.pid}`;
  config.healthMaxBudgetAgeSec ??= defaultHealthMaxBudgetAgeSec(config.computeIntervalSec);
  Object.freeze(config.budget);
  Object.freeze(config.inputFamilies);
  return Object.freeze(config);
}

