import { expect } from 'chai';
import { CycleLog } from '../../../../lib/worker/cycle/cycle-log';
import { newCycleContext } from '../../../../lib/worker/cycle/cycle-context';
import type { CycleReport } from '../../../../lib/worker/cycle-report';
import { captureLogs } from '../../../support/log-capture';

const WARN = 40;
const INFO = 30;

function report(changes: Partial<CycleReport>): CycleReport {
  const { report } = newCycleContext({ nowMs: 1_700_000_000_000, startedPerf: 0, role: 'leader', mode: 'shadow', modeSource: 'env' });
  return Object.assign(report, changes);
}

describe('CycleLog', () => {
  it('writes one info line per cycle that did not fail, naming only the counts that apply', () => {
    const { logger, lines } = captureLogs();
    const log = new CycleLog(logger);
    log.write(report({ result: 'ok', symbols: 2, written: ['AUSDT', 'BUSDT'], durationMs: 12.345, staleInputs: { heat: 1 } }));
    log.write(report({ result: 'standby', role: 'standby', overCap: 3, fenced: 2 }));
    expect(lines.map((l) => [l.level, l.msg])).to.deep.equal([
      [INFO, 'cycle'],
      [INFO, 'cycle'],
    ]);
    const [ok, standby] = [lines[0]!, lines[1]!];
    expect(ok).to.include({ result: 'ok', role: 'leader', mode: 'shadow', portfolio: 'none', symbols: 2, written: 2, violations: 0, skipped: 0, writeFailures: 0, durationMs: 12.3 });
    expect(ok.stale).to.deep.equal({ heat: 1 });
    expect(ok).to.not.have.any.keys('overCap', 'fenced', 'error', 'cause', 'heat');
    expect(standby).to.include({ result: 'standby', role: 'standby', overCap: 3, fenced: 2 });
  });

  it('logs failed cycles at warn once per cause, with the first write failures, and their end once', () => {
    const { logger, lines } = captureLogs();
    const log = new CycleLog(logger);
    const failed = () => report({ result: 'failed', cause: 'OOM', error: 'write budgets: OOM', writeFailures: [{ target: 'AUSDT', error: 'OOM command not allowed' }] });
    log.write(failed());
    log.write(failed());
    log.write(report({ result: 'ok' }));
    expect(lines.map((l) => [l.level >= WARN, l.msg])).to.deep.equal([
      [true, 'cycle failed; the next cycle writes everything again (repeats of this cause are counted, not logged)'],
      [false, 'cycles succeed again'],
      [false, 'cycle'],
    ]);
    expect(lines[0]).to.include({ cause: 'OOM', error: 'write budgets: OOM', writeFailures: 1 });
    expect(lines[0]!.failures).to.deep.equal([{ target: 'AUSDT', error: 'OOM command not allowed' }]);
  });
});
