import { expect } from 'chai';
import { symbolUniverse } from '../../../lib/engine/symbol-universe';

describe('symbolUniverse', () => {
  it('is the sorted union of held, configured and tracked symbols, each once', () => {
    const universe = symbolUniverse({ held: ['ETHUSDT', 'BTCUSDT'], configured: ['XRPUSDT', 'BTCUSDT'], tracked: ['SOLUSDT', 'ETHUSDT'] }, 100);
    expect(universe).to.deep.equal({ symbols: ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'XRPUSDT'], overCap: [] });
  });

  it('keeps held symbols first, then configured, then tracked, when the cap bites', () => {
    const universe = symbolUniverse({ held: ['ZUSDT', 'YUSDT'], configured: ['XUSDT', 'AUSDT'], tracked: ['BUSDT', 'CUSDT'] }, 3);
    expect(universe.symbols).to.deep.equal(['AUSDT', 'YUSDT', 'ZUSDT']);
    expect(universe.overCap).to.deep.equal(['BUSDT', 'CUSDT', 'XUSDT']);
  });

  it('never lists a symbol both kept and over the cap', () => {
    const universe = symbolUniverse({ held: ['AUSDT'], configured: ['BUSDT'], tracked: ['BUSDT', 'AUSDT', 'CUSDT'] }, 1);
    expect(universe).to.deep.equal({ symbols: ['AUSDT'], overCap: ['BUSDT', 'CUSDT'] });
  });
});
