import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LiveMarketStateHash, MINUTE_SIGMA_BANDS, PortfolioStateHash, PositionSnapshotHash, positionPrice, volRegimeFromMinuteSigma } from '../../../types/inputs';
import { PermitRequest, readPermitRequest } from '../../../types/permit';
import { normalizeSymbol } from '../../../types/symbol';
import { pyFloat } from '../../support/live-system';

describe('inputs as the live system writes them', () => {
  it('parses a position as the position state brain writes it, Python float strings included', () => {
    const parsed = PositionSnapshotHash.parse({
      symbol: 'BTCUSDT',
      position_amt: pyFloat(-0.5),
      side: 'SHORT',
      quantity: pyFloat(0.5),
      entry_price: pyFloat(100000),
      mark_price: pyFloat(99500.5),
      current_price: pyFloat(99500.5),
      unrealized_pnl: pyFloat(249.75),
      leverage: '10',
      ts_epoch: '1796000000',
      source: 'position_state_brain',
    });
    expect(parsed).to.deep.equal({ position_amt: -0.5, side: 'SHORT', entry_price: 100000, mark_price: 99500.5, ts_epoch: 1796000000 });
    expect(positionPrice(parsed)).to.equal(99500.5);
  });

  it('takes a flat position with price 0.0 (as the brain writes one) as flat without a price', () => {
    const flat = PositionSnapshotHash.parse({ position_amt: '0.0', side: 'FLAT', entry_price: '0.0', mark_price: '0.0', ts_epoch: '1796000000' });
    expect(flat.position_amt).to.equal(0);
    expect(positionPrice(flat)).to.equal(undefined);
  });

  it('reads exponents as Python writes them (1e-05)', () => {
    expect(pyFloat(0.00001)).to.equal('1e-05');
    expect(PositionSnapshotHash.parse({ position_amt: pyFloat(0.00001), mark_price: '100.0' }).position_amt).to.equal(0.00001);
  });

  it('parses the portfolio state publisher\'s counts of the positions it saw', () => {
    expect(PortfolioStateHash.parse({ equity_usd: '100000.00', timestamp: '1796000000', positions_count: '3', positions_notional_usd: '65000.50', drawdown: '0.0', source: 'portfolio-state-publisher' })).to.deep.equal({
      equity_usd: 100000,
      timestamp: 1796000000,
      positions_count: 3,
      positions_notional_usd: 65000.5,
      drawdown: 0,
    });
    expect(PortfolioStateHash.safeParse({ equity_usd: '1', timestamp: '1', positions_count: '2.5' }).success).to.equal(false);
  });

  it('parses the market state publisher\'s sigma and timestamp', () => {
    expect(LiveMarketStateHash.parse({ sigma: '0.00120000', mu: '0.00001000', p_trend: '0.200000', ts_timestamp: '1796000000' })).to.deep.equal({ sigma: 0.0012, ts_timestamp: 1796000000 });
  });
});

describe('volRegimeFromMinuteSigma', () => {
  it('scales the guide\'s bands, read as hourly volatility, to one minute by sqrt(60)', () => {
    expect(MINUTE_SIGMA_BANDS.lowBelow).to.be.closeTo(0.005 / Math.sqrt(60), 1e-12);
    expect(MINUTE_SIGMA_BANDS.highAbove).to.be.closeTo(0.02 / Math.sqrt(60), 1e-12);
    expect(MINUTE_SIGMA_BANDS.extremeAbove).to.be.closeTo(0.03 / Math.sqrt(60), 1e-12);
  });

  it('gives LOW, NORMAL, HIGH and EXTREME at the documented edges', () => {
    expect(volRegimeFromMinuteSigma(0.0003)).to.equal(0);
    expect(volRegimeFromMinuteSigma(0.0006)).to.equal(0);
    expect(volRegimeFromMinuteSigma(0.0007)).to.equal(0.33);
    expect(volRegimeFromMinuteSigma(0.0025)).to.equal(0.33);
    expect(volRegimeFromMinuteSigma(0.0026)).to.equal(0.67);
    expect(volRegimeFromMinuteSigma(0.0038)).to.equal(0.67);
    expect(volRegimeFromMinuteSigma(0.0039)).to.equal(1);
  });

  it('matches the table of docs/worker.md', () => {
    const doc = readFileSync(join(__dirname, '..', '..', '..', 'docs', 'worker.md'), 'utf8');
    const bands = [MINUTE_SIGMA_BANDS.lowBelow, MINUTE_SIGMA_BANDS.highAbove, MINUTE_SIGMA_BANDS.extremeAbove].map((b) => b.toFixed(6).replace(/0+$/, ''));
    for (const band of bands) expect(doc, band).to.contain(band);
  });
});

describe('symbols are matched case-insensitively on the way in', () => {
  it('normalizes btcusdt to BTCUSDT and refuses what no case makes a symbol', () => {
    expect(normalizeSymbol('btcusdt')).to.equal('BTCUSDT');
    expect(normalizeSymbol('1000pepeUSDT')).to.equal('1000PEPEUSDT');
    expect(normalizeSymbol('btc-usdt')).to.equal(undefined);
    expect(normalizeSymbol('x'.repeat(33))).to.equal(undefined);
    expect(normalizeSymbol(42)).to.equal(undefined);
  });

  it('gives the same upper-case symbol from the schema and the fast reader', () => {
    const req = { planId: 'p1', symbol: 'ethusdt', action: 'OPEN', side: 'BUY', notionalUsd: 100 };
    expect(PermitRequest.parse(req).symbol).to.equal('ETHUSDT');
    expect(readPermitRequest(req)?.symbol).to.equal('ETHUSDT');
    expect(PermitRequest.safeParse({ ...req, symbol: 'eth*' }).success).to.equal(false);
    expect(readPermitRequest({ ...req, symbol: 'eth*' })).to.equal(undefined);
  });
});
