import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import fc from 'fast-check';
import { ConfigError, loadConfig } from '../../../lib/config';
import { createRedisClient } from '../../../lib/redis/client';
import { parseRedisUrl, redactUrl, RedisUrlError } from '../../../lib/redis/redis-url';
import { GateOptionsError, resolveGateOptions } from '../../../plugin/gate-options';

/** Passwords of any characters, URL specials included, with a marker so a leak cannot be a coincidence. */
const password = fc
  .string({ unit: fc.constantFrom(...'/?#@:%[]!$&\'()*+,;= "<>\\^`{|}~\t'.split(''), 'a', 'Z', '9', 'é', '€', '😀'), maxLength: 24 })
  .map((s) => `Pw7${s}Xq`);
const user = fc.constantFrom('', 'default', 'p28-worker');

const leaks = (text: string, pw: string): boolean => text.includes(pw) || text.includes(encodeURIComponent(pw));

function messageOf(run: () => unknown): string {
  try {
    run();
    return '';
  } catch (error) {
    return `${(error as Error).message} ${JSON.stringify(error)} ${String((error as Error).stack)}`;
  }
}

describe('passwords in Redis URLs', () => {
  it('parses any password, percent-encoded or typed as is, and gives it back exactly', () => {
    fc.assert(
      fc.property(user, password, (u, pw) => {
        const encoded = parseRedisUrl(`redis://${encodeURIComponent(u)}:${encodeURIComponent(pw)}@redis.internal:6380/2`);
        expect(encoded).to.deep.equal({ host: 'redis.internal', port: 6380, username: u || undefined, password: pw, db: 2, tls: false });
        const typed = parseRedisUrl(`rediss://${u}:${pw}@redis.internal:6380/2`);
        expect([typed.host, typed.port, typed.db, typed.tls]).to.deep.equal(['redis.internal', 6380, 2, true]);
        if (!pw.includes('%')) expect(typed.password).to.equal(pw);
      }),
      { numRuns: 500 },
    );
  });

  it('never shows the password: redactUrl, config errors, gate option errors, client creation', () => {
    fc.assert(
      fc.property(user, password, fc.constantFrom('redis.internal:6380/2', 'host:notaport', 'host:6379/x', '', 'ho st'), (u, pw, rest) => {
        for (const url of [`redis://${u}:${pw}@${rest}`, `rediss://${u}:${encodeURIComponent(pw)}@${rest}`, `http://${u}:${pw}@${rest}`, `${u}:${pw}@${rest}`]) {
          expect(leaks(redactUrl(url), pw), `redactUrl(${url})`).to.equal(false);
          const config = messageOf(() => loadConfig({ REDIS_URL: url }));
          expect(leaks(config, pw), config).to.equal(false);
          const gate = messageOf(() => resolveGateOptions({ redisUrl: url }));
          expect(leaks(gate, pw), gate).to.equal(false);
          const client = messageOf(() => createRedisClient({ url, profile: 'gate', lazyConnect: true }).disconnect());
          expect(leaks(client, pw), client).to.equal(false);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('names the problem with the URL redacted: ConfigError, GateOptionsError, RedisUrlError', () => {
    const url = 'redis://:pa/ss9SECRET@host:port';
    const config = messageOf(() => loadConfig({ REDIS_URL: url }));
    expect(config).to.contain('REDIS_URL: expected a redis:// or rediss:// URL with a valid host, port and db, got "redis://:***@host:port"');
    expect(() => loadConfig({ REDIS_URL: url })).to.throw(ConfigError);
    expect(() => resolveGateOptions({ redisUrl: url })).to.throw(GateOptionsError, /redisUrl: .*redis:\/\/:\*\*\*@host:port/);
    expect(() => parseRedisUrl(url)).to.throw(RedisUrlError);
    // A '/' or '%ZZ' in the password is a valid password, not a broken URL.
    expect(loadConfig({ REDIS_URL: 'redis://:pa/ss9SECRET@host' }).redisUrl).to.equal('redis://:pa/ss9SECRET@host');
    expect(parseRedisUrl('redis://:pa%ZZss@host').password).to.equal('pa%ZZss');
  });

  it('p28-worker exits 2 on a bad REDIS_URL without printing its password', () => {
    const root = join(__dirname, '..', '..', '..');
    const run = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'lib', 'cli.ts'), 'mode'], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', REDIS_URL: 'redis://:pa/ss9SECRET%ZZ@host:port' },
      encoding: 'utf8',
      timeout: 30000,
    });
    expect(run.status).to.equal(2);
    expect(run.stdout + run.stderr).to.contain('REDIS_URL').and.not.contain('SECRET');
  });
});
