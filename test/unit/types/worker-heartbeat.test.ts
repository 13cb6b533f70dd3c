import { expect } from 'chai';
import { encodeWorkerHeartbeat, WorkerHeartbeat } from '../../../types/worker-heartbeat';

describe('WorkerHeartbeat', () => {
  it('round-trips through the strings written to Redis, epoch ms whole', () => {
    const fields = encodeWorkerHeartbeat({ last_success_ts: 1764000000123.4, leader: 'w1-42', symbols_written: 12, cycle_ms: 3.456 });
    expect(fields).to.deep.equal({ last_success_ts: '1764000000123', leader: 'w1-42', symbols_written: '12', cycle_ms: '3.5' });
    expect(WorkerHeartbeat.parse(fields)).to.deep.equal({ last_success_ts: 1764000000123, leader: 'w1-42', symbols_written: 12, cycle_ms: 3.5 });
  });

  it('carries the leader\'s mode, its source and its P28_MODE, and still reads a heartbeat without them', () => {
    const beat = { last_success_ts: 1764000000123, leader: 'w1', symbols_written: 1, cycle_ms: 2, mode: 'enforce', mode_source: 'override', configured_mode: 'shadow' } as const;
    const fields = encodeWorkerHeartbeat(beat);
    expect(fields).to.include({ mode: 'enforce', mode_source: 'override', configured_mode: 'shadow' });
    expect(WorkerHeartbeat.parse(fields)).to.deep.equal(beat);
    expect(WorkerHeartbeat.safeParse({ ...fields, mode: 'block' }).success).to.equal(false);
  });

  it('rejects a heartbeat without a whole epoch ms or a leader', () => {
    expect(WorkerHeartbeat.safeParse({ last_success_ts: '1.5', leader: 'w1', symbols_written: '1', cycle_ms: '1' }).success).to.equal(false);
    expect(WorkerHeartbeat.safeParse({ last_success_ts: '1', leader: '', symbols_written: '1', cycle_ms: '1' }).success).to.equal(false);
  });
});
