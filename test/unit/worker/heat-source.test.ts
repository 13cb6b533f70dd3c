import { expect } from 'chai';
import sinon from 'sinon';
import { freePort } from '../../support/local-redis-server';
import { HeatSource, heatFromExposition } from '../../../lib/worker/sources/heat-source';
import { createLogger } from '../../../lib/logger';
import { HeatGateStub, heatExposition } from '../../support/heat-gate-stub';

/** A pino logger whose lines land in `lines`. */
function capturingLogger(): { logger: ReturnType<typeof createLogger>; lines: { level: number; msg: string; failure?: string }[] } {
  const lines: { level: number; msg: string; failure?: string }[] = [];
  const logger = createLogger('debug', { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { logger, lines };
}

describe('heatFromExposition', () => {
  it('reads the p26_heat_value gauge from exposition text', () => {
    expect(heatFromExposition(heatExposition(0.65))).to.deep.equal({ value: 0.65 });
  });

  it('takes the highest valid sample when the gauge has several label sets', () => {
    const text = '# TYPE p26_heat_value gauge\np26_heat_value{book="a"} 0.2\np26_heat_value{book="b"} 0.7\np26_heat_value{book="c"} 1.5\n';
    expect(heatFromExposition(text)).to.deep.equal({ value: 0.7 });
  });

  it('accepts an untyped sample and exponent notation', () => {
    expect(heatFromExposition('p26_heat_value 6.5e-1\n')).to.deep.equal({ value: 0.65 });
  });

  for (const [name, text, failure] of [
    ['an HTML error page', '<html><body>502 Bad Gateway</body></html>\n', 'missing_metric'],
    ['an empty body', '', 'missing_metric'],
    ['an unreadable line', 'p26_heat_value{a=1} 0.5\n', 'unparsable'],
    ['a value above 1', heatExposition(1.2), 'out_of_range'],
    ['a negative value', heatExposition(-0.1), 'out_of_range'],
    ['NaN', heatExposition('NaN'), 'out_of_range'],
    ['+Inf', heatExposition('+Inf'), 'out_of_range'],
    ['the gauge typed as a counter', '# TYPE p26_heat_value counter\np26_heat_value 0.2\n', 'missing_metric'],
  ] as const) {
    it(`reports ${failure} for ${name}`, () => {
      const result = heatFromExposition(text);
      expect(result).to.have.property('failure', failure);
    });
  }
});

describe('HeatSource', () => {
  let stub: HeatGateStub;
  let clock: sinon.SinonFakeTimers;
  const start = 1_800_000_000_000;

  beforeEach(async () => {
    stub = await HeatGateStub.start();
    // Only Date is faked: the HTTP server, fetch and its timeout keep running on real timers.
    clock = sinon.useFakeTimers({ now: start, toFake: ['Date'] });
  });
  afterEach(async () => {
    clock.restore();
    await stub.close();
  });

  const source = (overrides: Partial<ConstructorParameters<typeof HeatSource>[0]> = {}) =>
    new HeatSource({ url: stub.url, timeoutMs: 300, maxLkgAgeSec: 900, ...overrides });

  it('returns the live value served by the heat gate', async () => {
    stub.serveHeat(0.65);
    expect(await source().read()).to.deep.equal({ value: 0.65, source: 'live', ageSec: 0 });
  });

  it('falls back to the last known value while it is younger than maxLkgAgeSec', async () => {
    const heat = source();
    stub.serveHeat(0.4);
    await heat.read();
    stub.response = { status: 200, body: 'garbage\n', delayMs: 0 };
    clock.tick(899_000);
    const reading = await heat.read();
    expect(reading).to.include({ value: 0.4, source: 'lkg', failure: 'missing_metric', ageSec: 899 });
  });

  it('falls back to 0.0 once the last known value is older than maxLkgAgeSec', async () => {
    const heat = source();
    stub.serveHeat(0.4);
    await heat.read();
    stub.serveHeat(3);
    clock.tick(901_000);
    expect(await heat.read()).to.include({ value: 0, source: 'default', failure: 'out_of_range' });
  });

  it('never uses a last known value when maxLkgAgeSec is 0', async () => {
    const heat = source({ maxLkgAgeSec: 0 });
    stub.serveHeat(0.4);
    await heat.read();
    stub.response = { status: 500, body: 'oops', delayMs: 0 };
    expect(await heat.read()).to.include({ value: 0, source: 'default', failure: 'http_status' });
  });

  it('falls back with failure unreachable when nothing listens', async () => {
    const heat = source({ url: `http://127.0.0.1:${await freePort()}/metrics` });
    expect(await heat.read()).to.include({ value: 0, source: 'default', failure: 'unreachable' });
  });

  it('gives up after timeoutMs when the heat gate is slow, and falls back with failure timeout', async () => {
    const heat = source({ timeoutMs: 100 });
    stub.serveHeat(0.4);
    await heat.read();
    stub.response = { status: 200, body: heatExposition(0.9), delayMs: 5000 };
    expect(await heat.read()).to.include({ value: 0.4, source: 'lkg', failure: 'timeout' });
  });

  it('falls back with failure http_status on a non-200 answer', async () => {
    stub.response = { status: 503, body: heatExposition(0.3), delayMs: 0 };
    expect(await source().read()).to.include({ value: 0, source: 'default', failure: 'http_status', detail: 'HTTP 503' });
  });

  it('refuses an answer whose Content-Length exceeds maxBytes, and falls back with failure too_large', async () => {
    const heat = source({ maxBytes: 1024 });
    stub.serveHeat(0.4);
    await heat.read();
    stub.response = { status: 200, body: heatExposition(0.9) + `# ${'x'.repeat(2000)}\n`, delayMs: 0 };
    expect(await heat.read()).to.include({ value: 0.4, source: 'lkg', failure: 'too_large' });
  });

  it('stops reading a chunked answer once it passes maxBytes', async () => {
    const heat = source({ maxBytes: 4096, timeoutMs: 5000 });
    stub.response = { status: 200, body: heatExposition(0.9), delayMs: 0, padBytes: 8192 };
    expect(await heat.read()).to.include({ value: 0, source: 'default', failure: 'too_large' });
    stub.response = { status: 200, body: heatExposition(0.9), delayMs: 0, padBytes: 2048 };
    expect(await heat.read()).to.include({ value: 0.9, source: 'live' });
  });

  it('warns once per failure cause, not on every read, and says when it recovers', async () => {
    const { logger, lines } = capturingLogger();
    const heat = source({ logger });
    stub.response = { status: 200, body: 'garbage\n', delayMs: 0 };
    await heat.read();
    await heat.read();
    await heat.read();
    stub.response = { status: 500, body: '', delayMs: 0 };
    await heat.read();
    await heat.read();
    stub.serveHeat(0.2);
    await heat.read();
    const warnings = lines.filter((l) => l.level === 40);
    expect(warnings.map((w) => w.failure)).to.deep.equal(['missing_metric', 'http_status']);
    expect(lines.filter((l) => l.msg === 'heat source recovered')).to.have.length(1);
  });
});
