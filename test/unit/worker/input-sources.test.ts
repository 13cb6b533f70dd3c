import { expect } from 'chai';
import { STALE_INPUT_TYPES } from '../../../lib/worker/cycle-report';
import { INPUT_SOURCES, staleLabelsOf } from '../../../lib/worker/sources/index';

describe('INPUT_SOURCES', () => {
  it('lists every input of the cycle once, each with its scope', () => {
    expect(INPUT_SOURCES.map((s) => [s.name, s.scope])).to.deep.equal([
      ['portfolio_state', 'portfolio'],
      ['heat', 'portfolio'],
      ['positions', 'symbol'],
      ['market_state', 'symbol'],
      ['cluster_stress', 'cluster'],
    ]);
  });

  it('gives p28_stale_input_total its input_type values: every label of the sources, then the mode override', () => {
    expect(STALE_INPUT_TYPES).to.deep.equal([...staleLabelsOf(INPUT_SOURCES), 'mode_override']);
    expect([...STALE_INPUT_TYPES].sort()).to.deep.equal(['cluster_stress', 'heat', 'mode_override', 'portfolio_state', 'position', 'position_snapshot', 'vol_regime']);
  });

  it('counts a label shared by two sources once', () => {
    expect(staleLabelsOf([{ staleLabels: ['a', 'b'] }, { staleLabels: ['b', 'c'] }])).to.deep.equal(['a', 'b', 'c']);
  });
});
