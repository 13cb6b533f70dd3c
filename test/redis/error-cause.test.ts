import { expect } from 'chai';
import { redisErrorCause } from '../../lib/redis/error-cause';

describe('redisErrorCause', () => {
  const cases: [string, string][] = [
    ["NOPERM this user has no permissions to run the 'hset' command", 'NOPERM'],
    ["ERR The user executing the script can't run this command or subcommand script: 8ca0, on @user_script:18.", 'NOPERM'],
    ["OOM command not allowed when used memory > 'maxmemory'.", 'OOM'],
    ["READONLY You can't write against a read only replica.", 'READONLY'],
    ['WRONGPASS invalid username-password pair or user is disabled.', 'WRONGPASS'],
    ['Command timed out', 'TIMEOUT'],
    ['Connection is closed.', 'CONNECTION'],
    ['connect ECONNREFUSED 127.0.0.1:6390', 'CONNECTION'],
    ['something else', 'ERROR'],
  ];
  for (const [message, cause] of cases) {
    it(`names ${cause} for "${message.slice(0, 40)}"`, () => {
      expect(redisErrorCause(new Error(message))).to.equal(cause);
    });
  }
});
