import { expect } from 'chai';
import { EXIT, listenFailure } from '../../../lib/cli';
import { describeConnectionProblem } from '../../../lib/redis/connection-problem';

const errno = (code: string) => Object.assign(new Error(`listen ${code}: address`), { code });

describe('CLI error lines', () => {
  it('a listen failure is one line naming HOST:PORT and the variable to change, with its own exit code', () => {
    expect(listenFailure(errno('EADDRINUSE'), '127.0.0.1', 8049)).to.equal('cannot listen on 127.0.0.1:8049: the port is in use (another p28-worker?); set PORT to a free port (PORT=0 picks one)');
    expect(listenFailure(errno('EACCES'), '0.0.0.0', 80)).to.contain('set PORT');
    expect(listenFailure(errno('EADDRNOTAVAIL'), '10.9.9.9', 8049)).to.contain('set HOST');
    expect(listenFailure(new Error('other'), '127.0.0.1', 8049)).to.equal(undefined);
    expect(new Set(Object.values(EXIT)).size).to.equal(5);
    expect(EXIT).to.include({ ok: 0, failure: 1, config: 2, usage: 2, listen: 3, notReady: 4 });
  });

  it('names WRONGPASS and NOAUTH with REDIS_URL, and other causes with the client\'s message', () => {
    expect(describeConnectionProblem('redis://:***@h:6379', { cause: 'WRONGPASS', message: 'WRONGPASS invalid username-password pair' }, 'x')).to.match(/^Redis at redis:\/\/:\*\*\*@h:6379 refused the credentials \(WRONGPASS.*REDIS_URL$/);
    expect(describeConnectionProblem('redis://h:6379', { cause: 'NOAUTH', message: 'NOAUTH Authentication required.' }, 'x')).to.contain('requires a password (NOAUTH)');
    expect(describeConnectionProblem('redis://h:6379', undefined, 'Redis not ready after 3000 ms')).to.equal('cannot reach Redis at redis://h:6379: Redis not ready after 3000 ms');
  });
});
