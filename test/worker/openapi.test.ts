import { expect } from 'chai';
import { Validator } from '@seriousme/openapi-schema-validator';
import { openApiDocument } from '../../lib/worker/openapi';
import { OpenApiSchemas } from '../support/openapi-check';

describe('openApiDocument', () => {
  const doc = openApiDocument('1.2.3');

  it('is a valid OpenAPI 3.1 document for an OpenAPI validator', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    expect(result.errors ?? []).to.deep.equal([]);
    expect(result.valid).to.equal(true);
    expect(validator.version).to.equal('3.1');
  });

  it('describes every endpoint of the contract', () => {
    const operations = Object.entries(doc.paths as Record<string, object>).flatMap(([path, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`));
    expect(operations).to.have.members([
      'GET /health',
      'GET /metrics',
      'POST /v1/decisions',
      'GET /v1/budgets',
      'GET /v1/readiness',
      'GET /budget/{symbol}',
      'POST /budget/check',
      'POST /test/inject_portfolio_state',
      'GET /openapi.json',
    ]);
  });

  it('gives a request or response example for each JSON operation, and each matches its schema', () => {
    const schemas = new OpenApiSchemas(doc as never);
    const examples = schemas.examples();
    expect(examples.length).to.be.at.least(12);
    expect(examples.some((e) => e.status === 'request')).to.equal(true);
    for (const site of examples) {
      expect(schemas.errors(site, site.example), `${site.method} ${site.path} ${site.status}`).to.deep.equal([]);
    }
  });

  it('rejects values that break the schemas, so the example check has teeth', () => {
    const schemas = new OpenApiSchemas(doc as never);
    expect(schemas.errors({ path: '/v1/decisions', method: 'post', status: '200' }, { allow: true, reason: 'because' })).to.not.deep.equal([]);
    expect(schemas.errors({ path: '/v1/decisions', method: 'post', status: 'request' }, { planId: 'p', symbol: 'btc', action: 'OPEN' })).to.not.deep.equal([]);
    expect(schemas.errors({ path: '/budget/check', method: 'post', status: '200' }, { violation: 'no' })).to.not.deep.equal([]);
  });
});
