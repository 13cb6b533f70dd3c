import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as api from '../../../index';

describe('public API', () => {
  it('exports what the contract names from the package entry', () => {
    for (const name of [
      'computeBudget',
      'loadConfig',
      'ConfigError',
      'registerBudgetGate',
      'PERMIT_GATE',
      'PermitPipeline',
      'BudgetGate',
      'BudgetWorker',
      'startWorkerService',
      'BudgetHash',
      'PermitRequest',
      'GateReason',
      'RedisKeys',
      'createRedisClient',
    ]) {
      expect(api, name).to.have.property(name);
    }
  });

  it('exports no test harness and no internal class a user cannot configure', () => {
    for (const name of ['LocalRedisServer', 'freePort', 'HeatGateStub', 'WorkerMetrics', 'HeatSource', 'LeaderLease', 'ModeSwitch', 'startHttpServer', 'PortfolioReader', 'BudgetWriter', 'budgetParamsOf']) {
      expect(api, name).not.to.have.property(name);
    }
  });

  it('exports no parser internal: wire-number parsers, HMGET helpers, vol-regime mapping', () => {
    for (const name of ['parseDecimal', 'readDecimal', 'numericString', 'integerString', 'formatIssues', 'budgetFieldsFromValues', 'positionPrice', 'volRegimeOf', 'volRegimeFromSigma', 'readPermitRequest']) {
      expect(api, name).not.to.have.property(name);
    }
  });

  it('lists its exports by name (no export *), so the public API is read in one file', () => {
    const source = readFileSync(join(__dirname, '..', '..', '..', 'index.ts'), 'utf8');
    expect(source).not.to.match(/export\s*\*/);
  });

  it('builds only the package (index, lib, plugin, types) into dist, never the demo, the benchmarks or the tests', () => {
    const build = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'tsconfig.build.json'), 'utf8'));
    expect(build.include).to.deep.equal(['index.ts', 'lib/**/*.ts', 'plugin/**/*.ts', 'types/**/*.ts']);
  });

  it('points main, types, exports and the p28-worker bin at the built entry points', () => {
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'package.json'), 'utf8'));
    expect(pkg.name).to.equal('portfolio-risk-governor');
    expect(pkg.main).to.equal('dist/index.js');
    expect(pkg.types).to.equal('dist/index.d.ts');
    expect(pkg.exports['.']).to.deep.equal({ types: './dist/index.d.ts', default: './dist/index.js' });
    expect(pkg.bin['p28-worker']).to.equal('dist/lib/cli.js');
    expect(pkg.engines.node).to.equal('>=20.19');
    expect(pkg.dependencies.opossum).to.match(/^\^9\./);
    expect(readFileSync(join(__dirname, '..', '..', '..', 'lib', 'cli.ts'), 'utf8').startsWith('#!/usr/bin/env node')).to.equal(true);
  });
});
