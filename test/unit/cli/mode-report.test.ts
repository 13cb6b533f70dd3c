import { expect } from 'chai';
import { modeReport, type PublishedMode } from '../../../lib/mode-report';

const NOW = 1_769_553_250_000;

function published(p: Partial<PublishedMode> = {}): PublishedMode {
  return { override: null, heartbeat: undefined, hashModes: { shadow: 0, enforce: 0 }, lastAudit: undefined, localMode: undefined, overrideKey: 'quantum:p28:mode', nowMs: NOW, ...p };
}

const beat = (mode: 'shadow' | 'enforce', configured: 'shadow' | 'enforce' = mode, source: 'env' | 'override' = 'env') => ({
  last_success_ts: NOW - 2000,
  leader: 'host-a-1',
  symbols_written: 2,
  cycle_ms: 3,
  mode,
  mode_source: source,
  configured_mode: configured,
});

describe('modeReport: the mode the workers publish, not the local environment', () => {
  it("reports the heartbeat's mode and says when the local P28_MODE differs from the workers'", () => {
    const lines = modeReport(published({ heartbeat: beat('enforce'), hashModes: { shadow: 0, enforce: 2 }, localMode: 'shadow' }));
    expect(lines[0]).to.equal("mode: enforce (source: env, the workers' P28_MODE; read from the heartbeat of host-a-1)");
    expect(lines).to.include('heartbeat: leader host-a-1, last cycle 2 s ago, mode enforce from env, P28_MODE=enforce');
    expect(lines).to.include('budget hashes: 2 say enforce, 0 say shadow');
    expect(lines.at(-1)).to.equal("note: P28_MODE=shadow here differs from the workers' P28_MODE=enforce; this command reports what the workers publish, not this environment");
  });

  it('adds no note when the local P28_MODE agrees, or is unset', () => {
    expect(modeReport(published({ heartbeat: beat('enforce'), localMode: 'enforce' })).some((l) => l.startsWith('note:'))).to.equal(false);
    expect(modeReport(published({ heartbeat: beat('enforce') })).some((l) => l.startsWith('note:'))).to.equal(false);
  });

  it('a valid override wins, and hashes not yet rewritten are explained', () => {
    const lines = modeReport(published({ override: ' ENFORCE ', heartbeat: beat('shadow'), hashModes: { shadow: 3, enforce: 0 } }));
    expect(lines[0]).to.equal('mode: enforce (source: override, quantum:p28:mode)');
    expect(lines).to.include('override: enforce (quantum:p28:mode); it lasts until cleared or until a worker process starts');
    expect(lines.some((l) => l.includes('applied at each worker'))).to.equal(true);
  });

  it('an invalid override is reported as ignored, and the workers\' mode stands', () => {
    const lines = modeReport(published({ override: 'block', heartbeat: beat('shadow') }));
    expect(lines[0]).to.match(/^mode: shadow \(source: env/);
    expect(lines).to.include('override: "block" is invalid and ignored by the workers');
  });

  it('without a heartbeat, reads the budget hashes (enforce when any says enforce: a canary), then the audit stream', () => {
    expect(modeReport(published({ hashModes: { shadow: 5, enforce: 1 } }))[0]).to.equal("mode: enforce (source: env, the workers' P28_MODE; read from the budget hashes)");
    expect(modeReport(published({ hashModes: { shadow: 5, enforce: 0 }, localMode: 'enforce' })).at(-1)).to.match(/^note: P28_MODE=enforce here differs from the mode the workers publish \(shadow\)/);
    const audit = { from: 'shadow', to: 'enforce', source: 'env', instance: 'proc-a', timestamp: '1769553243' };
    const lines = modeReport(published({ lastAudit: audit }));
    expect(lines[0]).to.equal("mode: enforce (source: env, the workers' P28_MODE; read from the mode audit stream)");
    expect(lines).to.include('last switch: shadow -> enforce (env) by proc-a at 2026-01-27T22:34:03.000Z');
  });

  it('says plainly when no worker has published anything, instead of guessing from the local environment', () => {
    const lines = modeReport(published({ localMode: 'enforce' }));
    expect(lines[0]).to.equal('mode: unknown (source: none; no worker has published a mode: no heartbeat, no budget hashes, no audit entry)');
    expect(lines.some((l) => l.startsWith('note:'))).to.equal(false);
  });

  it('reports a start that cleared an override', () => {
    const audit = { event: 'cleared_at_start', from: 'enforce', to: 'shadow', source: 'env', instance: 'proc-b', timestamp: '1769553243' };
    expect(modeReport(published({ heartbeat: beat('shadow'), lastAudit: audit }))).to.include('last change: override enforce cleared at start by proc-b at 2026-01-27T22:34:03.000Z; mode -> shadow (env)');
  });
});
