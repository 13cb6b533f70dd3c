import { expect } from 'chai';
import { DocBlockError, extractBlocks, localize, namesSharedRedis } from '../../support/doc-blocks';

describe('doc-blocks: how the doc-tests read the documentation', () => {
  it('finds fenced blocks with their language, kind and line, indented ones included', () => {
    const md = ['# t', '', '```bash', 'echo 1', '```', '', '1. step', '   ```ts', '   const a = 1;', '   ```', '', '```text', 'out', '```'].join('\n');
    const blocks = extractBlocks('x.md', md);
    expect(blocks.map((b) => [b.line, b.lang, b.kind, b.code])).to.deep.equal([
      [3, 'bash', 'sh', 'echo 1\n'],
      [8, 'ts', 'ts', 'const a = 1;\n'],
      [12, 'text', 'output', 'out\n'],
    ]);
  });

  it('exempts a block only with a reason in the marker right above it', () => {
    const md = ['<!-- doc-test: not-run: installs a systemd unit on the host -->', '```bash', 'systemctl start x', '```'].join('\n');
    expect(extractBlocks('x.md', md)[0]!.notRun).to.equal('installs a systemd unit on the host');
    expect(() => extractBlocks('x.md', ['<!-- doc-test: not-run: no -->', '```bash', 'x', '```'].join('\n'))).to.throw(DocBlockError, /needs a reason/);
    expect(() => extractBlocks('x.md', ['<!-- doc-test: skip -->', '```bash', 'x', '```'].join('\n'))).to.throw(DocBlockError, /unknown doc-test marker/);
  });

  it('refuses a block without a language or with an unknown one, so a new block is never silently left out', () => {
    expect(() => extractBlocks('x.md', ['```', 'x', '```'].join('\n'))).to.throw(DocBlockError, /x\.md:1: a code block without a language/);
    expect(() => extractBlocks('x.md', ['```rust', 'x', '```'].join('\n'))).to.throw(DocBlockError, /unknown language "rust"/);
  });

  it('maps the documented addresses to private ones, and sees a block that would still reach port 6379', () => {
    const to = { redisUrl: 'redis://127.0.0.1:40001', workerPort: 40002, heatPort: 40003, installDir: '/repo' };
    expect(localize("redisUrl: 'redis://127.0.0.1:6379' curl localhost:8049/health http://127.0.0.1:8056/metrics /opt/quantum/portfolio-risk-governor/dist", to)).to.equal(
      "redisUrl: 'redis://127.0.0.1:40001' curl localhost:40002/health http://127.0.0.1:40003/metrics /repo/dist",
    );
    expect(namesSharedRedis('redis-cli -h 10.0.0.1:6379 ping')).to.equal(true);
    expect(namesSharedRedis('redis-cli -p 6379 ping')).to.equal(true);
    expect(namesSharedRedis('redis-cli ping')).to.equal(false);
  });
});
