import { accessSync, constants } from 'node:fs';
import { hostname } from 'node:os';
import { z } from 'zod';
import { MODES, type Mode } from '../types/mode';
import { SYMBOL_PATTERN } from '../types/symbol';
import { integerString, numericString } from '../types/wire-number';
import type { BudgetParams } from './engine/compute-budget';
import { LOG_LEVELS, type LogLevel } from './logger';
import { OptionsError, type OptionIssue } from './options-error';
import { DEFAULT_KEY_PREFIX } from './redis/keys';
import type { HostPort } from './redis/client';

export type { LogLevel } from './logger';
import { parseRedisUrl, redactUrl } from './redis/redis-url';

/** The worker's validated configuration. Units are in the names. */
export interface WorkerConfig {
  mode: Mode;
  /** The budget engine's parameters (BASE_RISK_PCT, the stress weights, MIN/MAX_BUDGET_K). */
  budget: BudgetParams;
  staleSec: number;
  maxLkgAgeSec: number;
  budgetHashTtlSec: number;
  computeIntervalSec: number;
  redisUrl: string;
  redisSentinels: HostPort[];
  redisSentinelName: string | undefined;
  redisClusterNodes: HostPort[];
  redisSentinelPassword: string | undefined;
  redisTlsCaFile: string | undefined;
  redisTlsCertFile: string | undefined;
  redisTlsKeyFile: string | undefined;
  keyPrefix: string;
  port: number;
  host: string;
  heatGateMetricsUrl: string;
  heatFetchTimeoutMs: number;
  heatMaxBytes: number;
  logLevel: LogLevel;
  leaseTtlMs: number;
  enforceSymbols: string[];
  violationStreamMaxLen: number;
  instanceId: string;
  /** P28_SYMBOLS: symbols that always get a budget, held or not. */
  extraSymbols: string[];
  /** P28_MAX_SYMBOLS: cap on the symbol universe. */
  maxSymbols: number;
  violationRepublishSec: number;
  /** HEALTH_MAX_BUDGET_AGE_SEC, or three compute intervals and at least 15 s when unset. */
  healthMaxBudgetAgeSec: number;
  /** Bearer token of the HTTP API (every endpoint but /health and /metrics); undefined = no auth. */
  apiToken: string | undefined;
  /** Serve POST /test/inject_portfolio_state. */
  testMode: boolean;
}

const hostPortList = z.string().transform((raw, ctx) => {
  const items = raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  const out: HostPort[] = [];
  for (const item of items) {
    const match = /^([^\s:]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.exec(item);
    const port = match ? Number(match[2]) : NaN;
    if (!match || port < 1 || port > 65535) {
      ctx.addIssue({ code: 'custom', message: `expected a comma-separated list of host:port, got ${JSON.stringify(raw)}` });
      return z.NEVER;
    }
    out.push({ host: match[1]!.replace(/^\[|\]$/g, ''), port });
  }
  return out;
});

/** A file the worker can read (TLS material); the message names the path, never the content. */
const readableFile = z.string().transform((raw, ctx) => {
  try {
    accessSync(raw, constants.R_OK);
    return raw;
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: `cannot read ${JSON.stringify(raw)} (${(error as NodeJS.ErrnoException).code ?? 'error'})` });
    return z.NEVER;
  }
});

/** A redis:// or rediss:// URL that `createRedisClient` can use; the message never shows its password. */
const redisUrl = z.string().transform((raw, ctx) => {
  try {
    parseRedisUrl(raw);
    return raw;
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
    return z.NEVER;
  }
});

function urlWithScheme(schemes: string[]) {
  return z.string().transform((raw, ctx) => {
    let url: URL | undefined;
    try {
      url = new URL(raw);
    } catch {
      url = undefined;
    }
    if (!url || !schemes.includes(url.protocol)) {
      const shown = JSON.stringify(redactUrl(raw));
      ctx.addIssue({ code: 'custom', message: `expected a ${schemes.map((s) => `${s}//`).join(' or ')} URL, got ${shown}` });
      return z.NEVER;
    }
    return raw;
  });
}

const choice = <T extends readonly [string, ...string[]]>(values: T) =>
  z.string().transform((raw, ctx) => {
    const v = raw.trim().toLowerCase();
    if (!(values as readonly string[]).includes(v)) {
      ctx.addIssue({ code: 'custom', message: `expected one of ${values.join(', ')}, got ${JSON.stringify(raw)}` });
      return z.NEVER;
    }
    return v as T[number];
  });

const flag = z.string().transform((raw, ctx) => {
  const v = raw.trim();
  if (v !== '0' && v !== '1') {
    ctx.addIssue({ code: 'custom', message: `expected 0 or 1, got ${JSON.stringify(raw)}` });
    return z.NEVER;
  }
  return v === '1';
});

// The token is a secret: a bad value is described, never echoed.
const apiToken = z.string().transform((raw, ctx) => {
  if (!/^[\x21-\x7e]{16,512}$/.test(raw)) {
    ctx.addIssue({ code: 'custom', message: `expected 16 to 512 printable characters without spaces (got ${raw.length} characters)` });
    return z.NEVER;
  }
  return raw;
});

const symbolList = z.string().transform((raw, ctx) => {
  const items = raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  const bad = items.filter((s) => !SYMBOL_PATTERN.test(s));
  if (bad.length > 0) {
    ctx.addIssue({ code: 'custom', message: `expected comma-separated upper-case symbols, got ${JSON.stringify(bad.join(','))}` });
    return z.NEVER;
  }
  return items;
});

const text = (pattern: RegExp, expected: string) =>
  z.string().transform((raw, ctx) => {
    if (!pattern.test(raw)) {
      ctx.addIssue({ code: 'custom', message: `expected ${expected}, got ${JSON.stringify(raw)}` });
      return z.NEVER;
    }
    return raw;
  });

interface VariableSpec {
  /** The environment variable. */
  env: string;
  /** Its default as it would be written in an env file; undefined = unset. */
  default: string | undefined;
  description: string;
  /** Where the value goes: a field of `WorkerConfig`, or `budget.<field>` of its `BudgetParams`. */
  key: ConfigKey;
  schema: z.ZodType<unknown, string>;
}

type ConfigKey = Exclude<keyof WorkerConfig, 'budget'> | `budget.${keyof BudgetParams}`;

const spec = (
  env: string,
  key: ConfigKey,
  defaultValue: string | undefined,
  schema: z.ZodType<unknown, string>,
  description: string,
): VariableSpec => ({ env, key, default: defaultValue, schema, description });

/**
 * Every environment variable the worker reads, in the order the README and the example env file
 * list them. An empty value counts as unset, so `VAR=` in an env file means "use the default".
 */
export const CONFIG_VARIABLES: readonly VariableSpec[] = Object.freeze([
  spec('P28_MODE', 'mode', 'shadow', choice(MODES), 'shadow or enforce: the mode written into budget hashes at start (switchable at run time)'),
  spec('BASE_RISK_PCT', 'budget.baseRiskPct', '0.02', numericString({ min: 0, max: 1, exclusiveMin: true }), 'share of equity per position'),
  spec('ALPHA_HEAT', 'budget.alphaHeat', '0.4', numericString({ min: 0, max: 1 }), 'stress weight of portfolio heat'),
  spec('BETA_CLUSTER', 'budget.betaCluster', '0.4', numericString({ min: 0, max: 1 }), 'stress weight of cluster stress'),
  spec('GAMMA_VOL', 'budget.gammaVol', '0.2', numericString({ min: 0, max: 1 }), 'stress weight of the volatility regime'),
  spec('MIN_BUDGET_K', 'budget.minBudgetUsd', '500', numericString({ min: 0 }), 'lowest budget in USD (the K is historical)'),
  spec('MAX_BUDGET_K', 'budget.maxBudgetUsd', '10000', numericString({ min: 0 }), 'highest budget in USD; must be >= MIN_BUDGET_K'),
  spec('STALE_SEC', 'staleSec', '30', numericString({ min: 0, exclusiveMin: true }), 'portfolio state older than this (seconds) is stale'),
  spec('MAX_LKG_AGE_SEC', 'maxLkgAgeSec', '900', numericString({ min: 0 }), 'how long (seconds) a last-known-good portfolio state or heat may stand in; 0 = never'),
  spec('BUDGET_HASH_TTL_SEC', 'budgetHashTtlSec', '60', integerString({ min: 1 }), 'TTL (seconds) of each budget hash; must exceed the compute interval'),
  spec('BUDGET_COMPUTE_INTERVAL_SEC', 'computeIntervalSec', '5', numericString({ min: 0.05 }), 'worker cycle period in seconds'),
  spec('REDIS_URL', 'redisUrl', 'redis://127.0.0.1:6379', redisUrl, 'redis:// or rediss:// URL, with user, password and db as usual'),
  spec('REDIS_SENTINELS', 'redisSentinels', undefined, hostPortList, 'host:port,... of Redis Sentinels; when set, REDIS_SENTINEL_NAME names the master and REDIS_URL gives credentials, TLS and db'),
  spec('REDIS_SENTINEL_NAME', 'redisSentinelName', 'mymaster', text(/^\S+$/, 'a master name'), 'the Sentinel master name'),
  spec('REDIS_SENTINEL_PASSWORD', 'redisSentinelPassword', undefined, z.string(), 'password of the Sentinels when they have their own (Sentinel requirepass); default: the password of REDIS_URL'),
  spec('REDIS_CLUSTER_NODES', 'redisClusterNodes', undefined, hostPortList, 'host:port,... seed nodes of a Redis Cluster; when set, REDIS_URL gives credentials and TLS'),
  spec('REDIS_TLS_CA_FILE', 'redisTlsCaFile', undefined, readableFile, 'PEM file of the CA(s) that signed the Redis server certificate (a private CA); needs a rediss:// REDIS_URL'),
  spec('REDIS_TLS_CERT_FILE', 'redisTlsCertFile', undefined, readableFile, 'PEM client certificate, for servers with tls-auth-clients yes (mutual TLS); needs REDIS_TLS_KEY_FILE'),
  spec('REDIS_TLS_KEY_FILE', 'redisTlsKeyFile', undefined, readableFile, 'PEM private key of REDIS_TLS_CERT_FILE'),
  spec('P28_KEY_PREFIX', 'keyPrefix', DEFAULT_KEY_PREFIX, text(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, "_", "." or "-"'), 'first segment of every Redis key read or written'),
  spec('PORT', 'port', '8049', integerString({ min: 0, max: 65535 }), 'port of /health and /metrics (0 picks a free one)'),
  spec('HOST', 'host', '127.0.0.1', text(/^\S+$/, 'a host name or address'), 'address /health and /metrics listen on'),
  spec('HEAT_GATE_METRICS_URL', 'heatGateMetricsUrl', 'http://127.0.0.1:8056/metrics', urlWithScheme(['http:', 'https:']), 'P2.6 Heat Gate exposition text with the gauge p26_heat_value'),
  spec('HEAT_FETCH_TIMEOUT_MS', 'heatFetchTimeoutMs', '1000', integerString({ min: 1, max: 60000 }), 'time limit for one heat fetch'),
  spec('HEAT_MAX_BYTES', 'heatMaxBytes', '1048576', integerString({ min: 1024, max: 67108864 }), 'largest P2.6 response read; a longer one is cut off and counts as a heat fallback'),
  spec('LOG_LEVEL', 'logLevel', 'info', choice(LOG_LEVELS), 'fatal, error, warn, info, debug, trace or silent (JSON logs on stdout)'),
  spec('LEASE_TTL_MS', 'leaseTtlMs', '15000', integerString({ min: 1000 }), 'leader lease; a stand-by replica takes over within about this long after the leader dies'),
  spec('P28_ENFORCE_SYMBOLS', 'enforceSymbols', undefined, symbolList, 'canary: when set and the mode is enforce, only these symbols get mode=enforce, the rest shadow'),
  spec('VIOLATION_STREAM_MAXLEN', 'violationStreamMaxLen', '100000', integerString({ min: 100 }), 'approximate length cap of the violation stream'),
  spec('P28_SYMBOLS', 'extraSymbols', undefined, symbolList, 'symbols that always get a budget hash (comma list), besides those with a position snapshot or a market hash'),
  spec('P28_MAX_SYMBOLS', 'maxSymbols', '20000', integerString({ min: 1 }), 'cap on the symbol universe; symbols past it get no budget and are counted (p28_symbols_over_cap_total) and logged'),
  spec('VIOLATION_REPUBLISH_SEC', 'violationRepublishSec', '10', numericString({ min: 0, exclusiveMin: true }), 'how often (seconds) a symbol that stays over budget is announced again on the violation stream'),
  spec('HEALTH_MAX_BUDGET_AGE_SEC', 'healthMaxBudgetAgeSec', undefined, numericString({ min: 0, exclusiveMin: true }), '/health is degraded when no replica has written budgets for this long (seconds); default three compute intervals, at least 15'),
  spec('P28_API_TOKEN', 'apiToken', undefined, apiToken, 'bearer token the HTTP API requires on every endpoint but /health and /metrics (unset: no auth); 16-512 printable characters'),
  spec('P28_TEST_MODE', 'testMode', '0', flag, '1 enables POST /test/inject_portfolio_state (writes the portfolio state; never in production)'),
  spec('P28_INSTANCE_ID', 'instanceId', undefined, text(/^\S{1,128}$/, 'an id without spaces'), 'this replica\'s name in the lease and logs (default host-pid)'),
]);

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

const UNSET_DEFAULTS: Partial<WorkerConfig> = {
  redisSentinels: [],
  redisClusterNodes: [],
  enforceSymbols: [],
  extraSymbols: [],
};

/** HEALTH_MAX_BUDGET_AGE_SEC when unset: three cycles may be missed before /health says degraded. */
const defaultHealthMaxBudgetAgeSec = (computeIntervalSec: number): number => Math.max(15, 3 * computeIntervalSec);

/**
 * Reads and validates the worker's configuration from `env` (normally `process.env`).
 * Throws one `ConfigError` that names every bad variable, so one run shows all of them.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): WorkerConfig {
  const issues: ConfigIssue[] = [];
  const out: Record<string, unknown> = { ...UNSET_DEFAULTS };
  const budget: Record<string, unknown> = {};
  for (const v of CONFIG_VARIABLES) {
    const given = env[v.env];
    const raw = given === undefined || given.trim() === '' ? v.default : given;
    if (raw === undefined) continue;
    const parsed = v.schema.safeParse(raw);
    if (!parsed.success) issues.push({ field: v.env, message: parsed.error.issues.map((i) => i.message).join('; ') });
    else if (v.key.startsWith('budget.')) budget[v.key.slice('budget.'.length)] = parsed.data;
    else out[v.key] = parsed.data;
  }
  out.budget = budget;
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
  if (issues.length > 0) throw new ConfigError(issues);
  config.instanceId ??= `${hostname()}-${process.pid}`;
  config.healthMaxBudgetAgeSec ??= defaultHealthMaxBudgetAgeSec(config.computeIntervalSec);
  Object.freeze(config.budget);
  return Object.freeze(config);
}

