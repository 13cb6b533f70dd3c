import { expect } from 'chai';
import { createLogger } from '../../../lib/logger';
import { ModeSwitch, parseModeOverride } from '../../../lib/worker/mode-switch';

const NOW = 1_800_000_000_000;

function capture() {
  const lines: { level: number; msg: string }[] = [];
  return { lines, logger: createLogger('debug', { write: (l: string) => void lines.push(JSON.parse(l)) }) };
}

describe('parseModeOverride', () => {
  it('accepts shadow and enforce in any case with surrounding blanks', () => {
    expect(parseModeOverride(' ENFORCE ')).to.equal('enforce');
    expect(parseModeOverride('shadow')).to.equal('shadow');
  });
  it('rejects anything else', () => {
    for (const bad of ['', 'on', 'block', 'enforce!', '1']) expect(parseModeOverride(bad)).to.equal(undefined);
  });
});

describe('ModeSwitch', () => {
  const make = (options: Partial<ConstructorParameters<typeof ModeSwitch>[0]> = {}) =>
    new ModeSwitch({ configuredMode: 'shadow', enforceSymbols: [], instanceId: 'w1', ...options });

  it('uses P28_MODE when no override is set', () => {
    expect(make().resolve(null, NOW)).to.deep.include({ mode: 'shadow', source: 'env' });
  });

  it('uses a valid override over P28_MODE', () => {
    const modes = make();
    expect(modes.resolve('enforce', NOW)).to.deep.include({ mode: 'enforce', source: 'override' });
    expect(modes.mode).to.equal('enforce');
  });

  it('ignores an invalid override, reports it and warns only when the bad value first appears', () => {
    const { lines, logger } = capture();
    const modes = make({ configuredMode: 'enforce', logger });
    const first = modes.resolve('yes please', NOW);
    modes.resolve('yes please', NOW);
    expect(first).to.deep.include({ mode: 'enforce', source: 'env', invalidOverride: 'yes please' });
    expect(lines.filter((l) => l.level === 40)).to.have.length(1);
    expect(lines.filter((l) => l.level === 20)).to.have.length(1);
  });

  it('treats an unreadable override key (wrong type) as invalid', () => {
    const decision = make().resolve(new Error('WRONGTYPE Operation against a key holding the wrong kind of value'), NOW);
    expect(decision.mode).to.equal('shadow');
    expect(decision.invalidOverride).to.match(/^unreadable: WRONGTYPE/);
  });

  it('warns on a change of effective mode, once', () => {
    const { lines, logger } = capture();
    const modes = make({ logger });
    modes.resolve('enforce', NOW);
    modes.resolve('enforce', NOW);
    modes.resolve(null, NOW);
    const warnings = lines.filter((l) => l.level === 40).map((l) => l.msg);
    expect(warnings).to.deep.equal(['mode changed from shadow to enforce', 'mode changed from enforce to shadow']);
  });

  it('proposes an audit entry when the audit stream does not end in the effective mode', () => {
    const modes = make();
    expect(modes.resolve('enforce', NOW, 'shadow').audit).to.deep.equal({
      from: 'shadow',
      to: 'enforce',
      source: 'override',
      instance: 'w1',
      timestamp: NOW / 1000,
    });
    expect(modes.resolve('enforce', NOW, 'enforce').audit).to.equal(undefined);
    expect(modes.resolve(null, NOW, null).audit).to.deep.include({ from: 'none', to: 'shadow', source: 'env' });
  });

  it('proposes no audit entry when the audit stream was not read (stand-by)', () => {
    expect(make().resolve('enforce', NOW).audit).to.equal(undefined);
  });

  it('enforces only the canary symbols under enforce, and nothing under shadow', () => {
    const modes = make({ enforceSymbols: ['BTCUSDT'] });
    expect(modes.symbolMode('BTCUSDT', 'enforce')).to.equal('enforce');
    expect(modes.symbolMode('ETHUSDT', 'enforce')).to.equal('shadow');
    expect(modes.symbolMode('BTCUSDT', 'shadow')).to.equal('shadow');
    expect(make().symbolMode('ETHUSDT', 'enforce')).to.equal('enforce');
  });

  it('builds a length-capped XADD for the audit stream', () => {
    const cmd = make({ auditMaxLen: 500 }).auditCommand('quantum:stream:p28.mode', {
      from: 'shadow', to: 'enforce', source: 'override', instance: 'w1', timestamp: 1800000000,
    });
    expect(cmd).to.deep.equal([
      'xadd', 'quantum:stream:p28.mode', 'MAXLEN', '~', 500, '*',
      'from', 'shadow', 'to', 'enforce', 'source', 'override', 'instance', 'w1', 'timestamp', 1800000000,
    ]);
  });
});
