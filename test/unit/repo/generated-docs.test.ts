import { expect } from 'chai';
import { GENERATED, renderAll, replaceSection } from '../../../dev/generated-docs';

describe('generated docs (npm run docs:gen)', () => {
  for (const { file, current, generated } of renderAll()) {
    it(`${file} is up to date with the declarations it is generated from`, () => {
      // On a failure: run `npm run docs:gen` and commit the result (after a merge too).
      expect(current, `${file} is stale: run npm run docs:gen`).to.equal(generated);
    });
  }

  it('covers the configuration table, the example env file, the metric tables and the gate options', () => {
    expect(GENERATED.map((g) => g.file)).to.include.members(['docs/configuration.md', 'deploy/portfolio-risk-governor.env.example', 'docs/metrics.md', 'docs/gate.md']);
  });

  it('replaces only the named section of a hand-written page, and refuses a page without its markers', () => {
    const page = 'intro\n<!-- generated: t (x) -->\nold\n<!-- end generated: t -->\noutro\n';
    expect(replaceSection(page, 't', 'new')).to.equal('intro\n<!-- generated: t (x) -->\nnew\n<!-- end generated: t -->\noutro\n');
    expect(() => replaceSection('no markers', 't', 'new')).to.throw(/no generated section "t"/);
  });
});
