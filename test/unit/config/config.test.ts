import { expect } from 'chai';
import { hostname } from 'node:os';
import { CONFIG_VARIABLES, ConfigError, loadConfig } from '../../../lib/config';

const FAMILY_SAYS = (raw: string, canBeNone = false): string =>
  `expected key segments of letters, digits, "_", "." or "-" joined by ":" (no wildcard)${canBeNone ? ', or none' : ''}, got ${JSON.stringify(raw)}`;

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected loadConfig to throw');
}

describe('loadConfig', () => {
  it('applies the contract defaults to an empty environment', () => {
    const config = loadConfig({});
    expect(config).to.deep.include({
      mode: 'shadow',
      budget: { baseRiskPct: 0.02, alphaHeat: 0.4, betaCluster: 0.4, gammaVol: 0.2, minBudgetUsd: 500, maxBudgetUsd: 10000 },
      staleSec: 30,
      maxLkgAgeSec: 900,
      budgetHashTtlSec: 60,
      computeIntervalSec: 5,
      redisUrl: 'redis://127.0.0.1:6379',
      port: 8049,
      host: '127.0.0.1',
      heatGateMetricsUrl: 'http://127.0.0.1:8056/metrics',
      logLevel: 'info',
      keyPrefix: 'quantum',
      heatFetchTimeoutMs: 1000,
      leaseTtlMs: 15000,
      violationStreamMaxLen: 100000,
      redisSentinelName: 'mymaster',
      maxSymbols: 20000,
      violationRepublishSec: 10,
      healthMaxBudgetAgeSec: 15,
      testMode: false,
    });
    expect(config.extraSymbols).to.deep.equal([]);
    expect(config.apiToken).to.equal(undefined);
    expect(config.redisSentinels).to.deep.equal([]);
    expect(config.redisClusterNodes).to.deep.equal([]);
    expect(config.enforceSymbols).to.deep.equal([]);
    expect(config.instanceId).to.equal(`${hostname()}-${process.pid}`);
  });

  it('defaults HEALTH_MAX_BUDGET_AGE_SEC to three compute intervals, at least 15 s', () => {
    expect(loadConfig({ BUDGET_COMPUTE_INTERVAL_SEC: '10', BUDGET_HASH_TTL_SEC: '60' }).healthMaxBudgetAgeSec).to.equal(30);
    expect(loadConfig({ BUDGET_COMPUTE_INTERVAL_SEC: '1' }).healthMaxBudgetAgeSec).to.equal(15);
    expect(loadConfig({ BUDGET_COMPUTE_INTERVAL_SEC: '10', HEALTH_MAX_BUDGET_AGE_SEC: '12' }).healthMaxBudgetAgeSec).to.equal(12);
  });

  it('returns a frozen object', () => {
    expect(Object.isFrozen(loadConfig({}))).to.equal(true);
  });

  it('treats an empty value as unset', () => {
    expect(loadConfig({ ALPHA_HEAT: '', P28_MODE: ' ' }).budget.alphaHeat).to.equal(0.4);
  });

  // One accepted value and one rejected value for every variable the worker reads.
  // `with`: other variables the accepted value needs (TLS files need a rediss:// URL).
  const cases: Record<string, { good: [string, string, unknown]; bad: string; says: string; with?: Record<string, string> }> = {
    P28_MODE: { good: ['ENFORCE', 'mode', 'enforce'], bad: 'block', says: 'expected one of shadow, enforce, got "block"' },
    BASE_RISK_PCT: { good: ['0.05', 'budget.baseRiskPct', 0.05], bad: '0', says: 'expected a number in (0,1], got "0"' },
    ALPHA_HEAT: { good: ['0.5', 'budget.alphaHeat', 0.5], bad: 'abc', says: 'expected a number in [0,1], got "abc"' },
    BETA_CLUSTER: { good: ['1', 'budget.betaCluster', 1], bad: '1.5', says: 'expected a number in [0,1], got "1.5"' },
    GAMMA_VOL: { good: ['0', 'budget.gammaVol', 0], bad: 'NaN', says: 'expected a number in [0,1], got "NaN"' },
    MIN_BUDGET_K: { good: ['100', 'budget.minBudgetUsd', 100], bad: '-5', says: 'expected a number >= 0, got "-5"' },
    MAX_BUDGET_K: { good: ['20000', 'budget.maxBudgetUsd', 20000], bad: 'Infinity', says: 'expected a number >= 0, got "Infinity"' },
    STALE_SEC: { good: ['10', 'staleSec', 10], bad: '0', says: 'expected a number > 0, got "0"' },
    MAX_LKG_AGE_SEC: { good: ['0', 'maxLkgAgeSec', 0], bad: '15m', says: 'expected a number >= 0, got "15m"' },
    BUDGET_HASH_TTL_SEC: { good: ['120', 'budgetHashTtlSec', 120], bad: '60.5', says: 'expected a whole number >= 1, got "60.5"' },
    BUDGET_COMPUTE_INTERVAL_SEC: { good: ['2.5', 'computeIntervalSec', 2.5], bad: '0', says: 'expected a number >= 0.05, got "0"' },
    REDIS_URL: { good: ['rediss://user:pw@redis.internal:6380/2', 'redisUrl', 'rediss://user:pw@redis.internal:6380/2'], bad: 'http://user:secret@x', says: 'expected a redis:// or rediss:// URL, got "http://user:***@x"' },
    REDIS_SENTINELS: { good: ['s1:26379, s2:26379', 'redisSentinels', [{ host: 's1', port: 26379 }, { host: 's2', port: 26379 }]], bad: 's1', says: 'expected a comma-separated list of host:port, got "s1"' },
    REDIS_SENTINEL_NAME: { good: ['primary', 'redisSentinelName', 'primary'], bad: 'my master', says: 'expected a master name, got "my master"' },
    REDIS_SENTINEL_PASSWORD: { good: ['s3nt:/@%', 'redisSentinelPassword', 's3nt:/@%'], bad: '', says: '' },
    REDIS_CLUSTER_NODES: { good: ['10.0.0.1:7000,[::1]:7001', 'redisClusterNodes', [{ host: '10.0.0.1', port: 7000 }, { host: '::1', port: 7001 }]], bad: 'n1:99999', says: 'expected a comma-separated list of host:port, got "n1:99999"' },
    REDIS_TLS_CA_FILE: { good: ['package.json', 'redisTlsCaFile', 'package.json'], bad: '/nonexistent/ca.pem', says: 'cannot read "/nonexistent/ca.pem" (ENOENT)', with: { REDIS_URL: 'rediss://redis:6380' } },
    REDIS_TLS_CERT_FILE: { good: ['package.json', 'redisTlsCertFile', 'package.json'], bad: '/nonexistent/c.pem', says: 'cannot read "/nonexistent/c.pem" (ENOENT)', with: { REDIS_URL: 'rediss://redis:6380', REDIS_TLS_KEY_FILE: 'package.json' } },
    REDIS_TLS_KEY_FILE: { good: ['package.json', 'redisTlsKeyFile', 'package.json'], bad: '/nonexistent/k.pem', says: 'cannot read "/nonexistent/k.pem" (ENOENT)', with: { REDIS_URL: 'rediss://redis:6380', REDIS_TLS_CERT_FILE: 'package.json' } },
    P28_KEY_PREFIX: { good: ['staging', 'keyPrefix', 'staging'], bad: 'a:b', says: 'expected letters, digits, "_", "." or "-", got "a:b"' },
    PORT: { good: ['0', 'port', 0], bad: '70000', says: 'expected a whole number in [0,65535], got "70000"' },
    HOST: { good: ['0.0.0.0', 'host', '0.0.0.0'], bad: 'two words', says: 'expected a host name or address, got "two words"' },
    HEAT_GATE_METRICS_URL: { good: ['https://heat:8443/metrics', 'heatGateMetricsUrl', 'https://heat:8443/metrics'], bad: 'ftp://x', says: 'expected a http:// or https:// URL, got "ftp://x"' },
    HEAT_FETCH_TIMEOUT_MS: { good: ['250', 'heatFetchTimeoutMs', 250], bad: '0', says: 'expected a whole number in [1,60000], got "0"' },
    HEAT_MAX_BYTES: { good: ['65536', 'heatMaxBytes', 65536], bad: '10', says: 'expected a whole number in [1024,67108864], got "10"' },
    LOG_LEVEL: { good: ['debug', 'logLevel', 'debug'], bad: 'verbose', says: 'expected one of fatal, error, warn, info, debug, trace, silent, got "verbose"' },
    LEASE_TTL_MS: { good: ['30000', 'leaseTtlMs', 30000], bad: '10', says: 'expected a whole number >= 1000, got "10"' },
    P28_ENFORCE_SYMBOLS: { good: ['BTCUSDT,ETHUSDT', 'enforceSymbols', ['BTCUSDT', 'ETHUSDT']], bad: 'BTCUSDT,eth*', says: 'expected comma-separated upper-case symbols, got "eth*"' },
    VIOLATION_STREAM_MAXLEN: { good: ['5000', 'violationStreamMaxLen', 5000], bad: '10', says: 'expected a whole number >= 100, got "10"' },
    P28_SYMBOLS: { good: ['SOLUSDT, XRPUSDT', 'extraSymbols', ['SOLUSDT', 'XRPUSDT']], bad: 'SOLUSDT;XRP', says: 'expected comma-separated upper-case symbols, got "SOLUSDT;XRP"' },
    P28_MAX_SYMBOLS: { good: ['500', 'maxSymbols', 500], bad: '0', says: 'expected a whole number >= 1, got "0"' },
    VIOLATION_REPUBLISH_SEC: { good: ['2.5', 'violationRepublishSec', 2.5], bad: '0', says: 'expected a number > 0, got "0"' },
    HEALTH_MAX_BUDGET_AGE_SEC: { good: ['4', 'healthMaxBudgetAgeSec', 4], bad: '-1', says: 'expected a number > 0, got "-1"' },
    P28_API_TOKEN: { good: ['s3cret-token-0123456789', 'apiToken', 's3cret-token-0123456789'], bad: 'short', says: 'expected 16 to 512 printable characters without spaces (got 5 characters)' },
    P28_TEST_MODE: { good: ['1', 'testMode', true], bad: 'yes', says: 'expected 0 or 1, got "yes"' },
    P28_CYCLE_THREAD: { good: ['0', 'cycleThread', false], bad: 'true', says: 'expected 0 or 1, got "true"' },
    RESERVATION_TTL_SEC: { good: ['5', 'reservationTtlSec', 5], bad: '-1', says: 'expected a number in [0,3600], got "-1"' },
    DECISION_LOG_MAXLEN: { good: ['0', 'decisionLogMaxLen', 0], bad: '-5', says: 'expected a whole number in [0,1000000000], got "-5"' },
    CYCLE_HISTORY_MAXLEN: { good: ['5000', 'cycleHistoryMaxLen', 5000], bad: '1.5', says: 'expected a whole number in [0,1000000000], got "1.5"' },
    P28_INSTANCE_ID: { good: ['worker-a', 'instanceId', 'worker-a'], bad: 'a b', says: 'expected an id without spaces, got "a b"' },
    POSITION_STALE_SEC: { good: ['90', 'positionStaleSec', 90], bad: '0', says: 'expected a number > 0, got "0"' },
    MARKET_STATE_STALE_SEC: { good: ['120', 'marketStateStaleSec', 120], bad: 'soon', says: 'expected a number > 0, got "soon"' },
    POSITIONS_FEED_TOLERANCE_PCT: { good: ['2.5', 'positionsFeedTolerancePct', 2.5], bad: '101', says: 'expected a number in [0,100], got "101"' },
    P28_PORTFOLIO_KEY: { good: ['state:portfolio:v2', 'inputFamilies.portfolio', 'state:portfolio:v2'], bad: 'state:*', says: FAMILY_SAYS('state:*') },
    P28_POSITIONS_FAMILY: { good: ['state:positions:v2', 'inputFamilies.positions', 'state:positions:v2'], bad: 'a b', says: FAMILY_SAYS('a b') },
    P28_LEGACY_POSITIONS_FAMILY: { good: ['none', 'inputFamilies.legacyPositions', undefined], bad: 'x::y', says: FAMILY_SAYS('x::y', true) },
    P28_MARKET_STATE_FAMILY: { good: ['ms', 'inputFamilies.marketState', 'ms'], bad: ':ms', says: FAMILY_SAYS(':ms') },
    P28_LEGACY_MARKET_FAMILY: { good: ['state:market:old', 'inputFamilies.legacyMarket', 'state:market:old'], bad: 'a?', says: FAMILY_SAYS('a?', true) },
    P28_CLUSTER_STRESS_FAMILY: { good: ['risk:cluster', 'inputFamilies.clusterStress', 'risk:cluster'], bad: 'risk cluster', says: FAMILY_SAYS('risk cluster') },
  };

  it('refuses a legacy family equal to the canonical one, naming the legacy variable', () => {
    expect(configError({ P28_LEGACY_POSITIONS_FAMILY: 'state:positions' }).issues).to.deep.equal([{ field: 'P28_LEGACY_POSITIONS_FAMILY', message: 'must differ from P28_POSITIONS_FAMILY (state:positions)' }]);
    expect(configError({ P28_MARKET_STATE_FAMILY: 'state:market' }).issues).to.deep.equal([{ field: 'P28_LEGACY_MARKET_FAMILY', message: 'must differ from P28_MARKET_STATE_FAMILY (state:market)' }]);
  });

  it('reads today\'s live key families, and the legacy ones beside them, by default', () => {
    expect(loadConfig({}).inputFamilies).to.deep.equal({
      portfolio: 'state:portfolio',
      positions: 'state:positions',
      legacyPositions: 'position:snapshot',
      marketState: 'marketstate',
      legacyMarket: 'state:market',
      clusterStress: 'cluster:stress',
    });
  });

  it('has an accepted and a rejected case for every variable it knows', () => {
    expect(Object.keys(cases).sort()).to.deep.equal(CONFIG_VARIABLES.map((v) => v.env).sort());
  });

  for (const [variable, c] of Object.entries(cases)) {
    const [value, key, expected] = c.good;
    it(`reads ${variable}=${value}`, () => {
      const config = loadConfig({ ...c.with, [variable]: value }) as unknown as Record<string, Record<string, unknown>>;
      const [head, field] = key.split('.');
      expect(field === undefined ? config[head!] : config[head!]![field]).to.deep.equal(expected);
    });
    // Any string is a password: nothing to reject.
    if (variable === 'REDIS_SENTINEL_PASSWORD') continue;
    it(`rejects ${variable}=${c.bad} with a message naming the variable`, () => {
      const error = configError({ ...c.with, [variable]: c.bad });
      expect(error.issues).to.deep.equal([{ field: variable, message: c.says }]);
      expect(error.message).to.contain(`${variable}: ${c.says}`);
      expect(error.code).to.equal('P28_CONFIG');
      expect(error.name).to.equal('ConfigError');
    });
  }

  it('names every bad variable in one error', () => {
    const error = configError({ ALPHA_HEAT: 'abc', PORT: '-1', P28_MODE: 'yolo' });
    expect(error.issues.map((i) => i.field)).to.deep.equal(['P28_MODE', 'ALPHA_HEAT', 'PORT']);
    expect(error.message).to.contain('ALPHA_HEAT: expected a number in [0,1], got "abc"');
  });

  it('rejects MIN_BUDGET_K above MAX_BUDGET_K', () => {
    const error = configError({ MIN_BUDGET_K: '2000', MAX_BUDGET_K: '1000' });
    expect(error.issues).to.deep.equal([{ field: 'MIN_BUDGET_K', message: 'must be <= MAX_BUDGET_K (1000), got 2000' }]);
  });

  it('accepts MIN_BUDGET_K equal to MAX_BUDGET_K', () => {
    expect(loadConfig({ MIN_BUDGET_K: '1000', MAX_BUDGET_K: '1000' }).budget.minBudgetUsd).to.equal(1000);
  });

  it('rejects a hash TTL that does not outlive the compute interval', () => {
    const error = configError({ BUDGET_HASH_TTL_SEC: '5', BUDGET_COMPUTE_INTERVAL_SEC: '5' });
    expect(error.issues[0]?.field).to.equal('BUDGET_HASH_TTL_SEC');
  });

  it('rejects TLS files without a rediss:// URL, and a client certificate without its key', () => {
    expect(configError({ REDIS_TLS_CA_FILE: 'package.json' }).issues).to.deep.equal([
      { field: 'REDIS_TLS_CA_FILE', message: 'needs a rediss:// REDIS_URL (TLS is switched on by the URL scheme)' },
    ]);
    expect(configError({ REDIS_URL: 'rediss://r:6380', REDIS_TLS_CERT_FILE: 'package.json' }).issues).to.deep.equal([
      { field: 'REDIS_TLS_KEY_FILE', message: 'REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE go together' },
    ]);
  });

  it('rejects Sentinel and Cluster together', () => {
    const error = configError({ REDIS_SENTINELS: 'a:1', REDIS_CLUSTER_NODES: 'b:2' });
    expect(error.issues[0]?.field).to.equal('REDIS_CLUSTER_NODES');
  });

  it('never shows an API token in an error, even a malformed one', () => {
    const token = 'hunter2 hunter2 hunter2';
    const error = configError({ P28_API_TOKEN: token });
    expect(error.message).to.not.contain('hunter2');
    expect(JSON.stringify(error.issues)).to.not.contain('hunter2');
  });

  it('never shows a Redis password in an error', () => {
    const error = configError({ REDIS_URL: 'http://admin:hunter2@redis:6379' });
    expect(error.message).not.to.contain('hunter2');
  });
});
