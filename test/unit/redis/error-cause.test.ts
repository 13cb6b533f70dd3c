import { expect } from 'chai';
import { ReplyError } from 'ioredis';
import { isReplyError, isTimeout, isWrongType, redisErrorCause, redisErrorCodeIn } from '../../../lib/redis/error-cause';

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

describe('the Redis error predicates', () => {
  it('tells an error Redis answered (ReplyError) from one raised because no answer came', () => {
    expect(isReplyError(new ReplyError('WRONGTYPE Operation against a key holding the wrong kind of value'))).to.equal(true);
    expect(isReplyError(new Error('Connection is closed.'))).to.equal(false);
  });

  it('names WRONGTYPE as bad data', () => {
    expect(isWrongType(new ReplyError('WRONGTYPE Operation against a key holding the wrong kind of value'))).to.equal(true);
    expect(isWrongType(new Error('OOM command not allowed'))).to.equal(false);
  });

  it("counts the client's command timeout and a timer's ETIMEDOUT as a timeout, a refused connection not", () => {
    expect(isTimeout(new Error('Command timed out'))).to.equal(true);
    expect(isTimeout(Object.assign(new Error('Timed out after 50ms'), { code: 'ETIMEDOUT' }))).to.equal(true);
    expect(isTimeout(new Error('connect ECONNREFUSED 127.0.0.1:6390'))).to.equal(false);
  });

  it('finds the Redis error code inside a message that says where it happened first', () => {
    expect(redisErrorCodeIn("lease: NOPERM User p28 has no permissions to run the 'evalsha' command")).to.equal('NOPERM');
    expect(redisErrorCodeIn('read inputs: Command timed out')).to.equal(undefined);
  });
});
