import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { scriptKeyCount, withScripts } from '../../../lib/redis/lua-scripts';
import type { RedisClient } from '../../../lib/redis/client';
import { connectedClient, useRedisServer } from '../../support/redis';

const luaDir = join(__dirname, '..', '..', '..', 'lib', 'redis', 'lua');

describe('Lua scripts', () => {
  it('reads the key count from the -N suffix of the file name, and refuses a name without one', () => {
    expect(scriptKeyCount('write-budget-1.lua')).to.equal(1);
    expect(scriptKeyCount('move-3.lua')).to.equal(3);
    expect(() => scriptKeyCount('write-budget.lua')).to.throw(/-<numberOfKeys>\.lua/);
  });

  it('every script file opens with a comment documenting KEYS, ARGV and the reply', () => {
    const files = readdirSync(luaDir).filter((f) => f.endsWith('.lua'));
    expect(files.length).to.be.greaterThan(0);
    for (const file of files) {
      const source = readFileSync(join(luaDir, file), 'utf8');
      expect(source.startsWith('--[['), file).to.equal(true);
      const header = source.slice(0, source.indexOf(']]'));
      expect(header, file).to.match(/KEYS/).and.match(/ARGV/).and.match(/[Rr]eturns?|[Rr]eply/);
    }
  });

  describe('on a real server', () => {
    const redis = useRedisServer();
    let client: RedisClient;

    before(async () => {
      client = await connectedClient(redis.server);
    });
    after(() => client.disconnect());

    it('defines every script once per client, and the commands run against Redis', async () => {
      const scripted = withScripts(client);
      expect(withScripts(client)).to.equal(scripted);
      await client.del('lease');
      const [taken, epoch] = await scripted.p28HoldLease('lease', 'token-a', 5000);
      expect(taken).to.equal(1);
      expect(epoch).to.match(/^\d{16}$/);
      expect(await scripted.p28HoldLease('lease', 'token-a', 5000)).to.deep.equal([2, epoch]);
      expect(await scripted.p28HoldLease('lease', 'token-b', 5000)).to.deep.equal([0, '']);
      expect(await client.get('lease')).to.equal(`token-a/${epoch}`);
      expect(await client.pttl('lease')).to.be.within(1, 5000);
      expect(await scripted.p28ReleaseLease('lease', 'token-b')).to.equal(0);
      expect(await scripted.p28ReleaseLease('lease', 'token-a')).to.equal(1);
      expect(await client.exists('lease')).to.equal(0);
    });

    it('survives SCRIPT FLUSH: EVALSHA falls back to EVAL and reloads the script', async () => {
      const scripted = withScripts(client);
      await client.script('FLUSH');
      await client.set('lease', 'token-a/1');
      expect(await scripted.p28HoldLease('lease', 'token-a', 5000)).to.deep.equal([2, '1']);
    });
  });
});
