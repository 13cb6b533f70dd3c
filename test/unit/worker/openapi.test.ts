import { expect } from 'chai';
import { Validator } from '@seriousme/openapi-schema-validator';
import type { FastifyInstance } from 'fastify';
import { OpenApiSchemas } from '../../support/openapi-check';
import { documentedOperations, servedApp, type ServedRoute } from '../../support/http-app';

describe('the OpenAPI document generated from the routes', () => {
  let app: FastifyInstance;
  let routes: ServedRoute[];
  let doc: Record<string, unknown>;
  before(async () => {
    ({ app, routes } = await servedApp({ version: '1.2.3' }));
    doc = app.swagger() as unknown as Record<string, unknown>;
  });
  after(async () => {
    await app.close();
  });

  it('is a valid OpenAPI 3.1 document for an OpenAPI validator', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    expect(result.errors ?? []).to.deep.equal([]);
    expect(result.valid).to.equal(true);
    expect(validator.version).to.equal('3.1');
    expect(doc.info).to.include({ version: '1.2.3' });
  });

  it('describes every route the app serves, and nothing else (HEAD and the 405 answers left out)', () => {
    const served = routes.filter((r) => !r.hidden && r.method !== 'HEAD').map((r) => `${r.method} ${r.path}`);
    expect(served).to.include('GET /openapi.json');
    expect(documentedOperations(doc)).to.have.members(served);
  });

  it('gives every operation an operationId and a summary', () => {
    for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, { operationId?: string; summary?: string }>>)) {
      for (const [method, op] of Object.entries(item)) {
        expect(op.operationId, `${method} ${path}`).to.be.a('string');
        expect(op.summary, `${method} ${path}`).to.be.a('string');
      }
    }
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

  it('serves only /health and /metrics without the token, as the document says', () => {
    const open = Object.entries(doc.paths as Record<string, Record<string, { security?: unknown[] }>>).flatMap(([path, item]) =>
      Object.entries(item)
        .filter(([, op]) => op.security?.length === 0)
        .map(([method]) => `${method.toUpperCase()} ${path}`),
    );
    expect(open).to.have.members(['GET /health', 'GET /metrics']);
  });
});
