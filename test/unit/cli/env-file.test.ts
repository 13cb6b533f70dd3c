import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnvFileError, readEnvFile } from '../../../lib/env-file';

describe('readEnvFile', () => {
  let dir: string;
  const file = (text: string): string => {
    const path = join(dir, `env-${Math.random().toString(36).slice(2)}`);
    writeFileSync(path, text);
    return path;
  };
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'p28-env-file-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("keeps every character of a value a shell would mangle: ', $, spaces, backquotes in quotes, = and @", () => {
    const env = readEnvFile(
      file(
        [
          '# comment',
          "REDIS_URL=redis://p28-worker:pa'ss$HOME@redis:6379/0",
          'P28_API_TOKEN=\'to"ken with spaces `x` #1\'',
          'LOG_LEVEL="info"',
          'P28_SYMBOLS=BTCUSDT,ETHUSDT',
          'EMPTY=',
          'X=a=b=c',
          '',
        ].join('\n'),
      ),
    );
    expect(env).to.deep.equal({
      REDIS_URL: "redis://p28-worker:pa'ss$HOME@redis:6379/0",
      P28_API_TOKEN: 'to"ken with spaces `x` #1',
      LOG_LEVEL: 'info',
      P28_SYMBOLS: 'BTCUSDT,ETHUSDT',
      EMPTY: '',
      X: 'a=b=c',
    });
  });

  it('refuses, by line number and without the value, a line systemd would read otherwise', () => {
    for (const [line, problem] of [
      ['REDIS_URL=redis://:pa#ss@redis:6379', "unquoted value with '#'"],
      ['REDIS_URL=redis://:pa\\ss@redis:6379', 'backslash'],
      ['P28_API_TOKEN="a\\"b"', 'double-quoted value with a backslash'],
      ["P28_API_TOKEN='abc' # note", 'after the closing quote'],
    ] as const) {
      const path = file(`LOG_LEVEL=info\n${line}\n`);
      try {
        readEnvFile(path);
        expect.fail(`accepted ${line}`);
      } catch (error) {
        expect(error).to.be.instanceOf(EnvFileError);
        expect((error as EnvFileError).code).to.equal('P28_ENV_FILE');
        expect((error as Error).message).to.contain('line 2').and.contain(problem);
        expect((error as Error).message).not.to.contain('pa#ss').and.not.to.contain('abc');
      }
    }
  });

  it('names a file it cannot read by its error code', () => {
    expect(() => readEnvFile(join(dir, 'missing'))).to.throw(EnvFileError, /cannot read the env file \(ENOENT\)/);
  });

  it('reads the shipped env example as it is', () => {
    const env = readEnvFile(join(__dirname, '..', '..', '..', 'deploy', 'portfolio-risk-governor.env.example'));
    expect(env.P28_MODE).to.equal('shadow');
  });
});
