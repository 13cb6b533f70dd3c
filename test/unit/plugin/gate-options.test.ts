import { expect } from 'chai';
import type { Redis } from 'ioredis';
import { BUDGET_GATE_DEFAULTS, GATE_OPTION_SPECS, GateOptionsError, resolveGateOptions } from '../../../plugin/gate-options';

// Option resolution never touches the client; any object stands in for one.
const client = {} as Redis;

function issuesOf(options: Parameters<typeof resolveGateOptions>[0]): { field: string; message: string }[] {
  try {
    resolveGateOptions(options);
  } catch (error) {
    expect(error).to.be.instanceOf(GateOptionsError);
    return [...(error as GateOptionsError).issues];
  }
  throw new Error('expected GateOptionsError');
}

describe('resolveGateOptions', () => {
  it('fills every numeric option with the default of its spec, and the defaults object agrees', () => {
    const resolved = resolveGateOptions({ redis: client });
    for (const [name, spec] of Object.entries(GATE_OPTION_SPECS)) {
      expect(resolved[name as keyof typeof GATE_OPTION_SPECS], name).to.equal(spec.default);
      expect(BUDGET_GATE_DEFAULTS[name as keyof typeof GATE_OPTION_SPECS], name).to.equal(spec.default);
    }
    expect(resolved).to.include({ keyPrefix: 'quantum', disabled: false, forceShadow: false, redis: client });
    expect(Object.isFrozen(BUDGET_GATE_DEFAULTS)).to.equal(true);
  });

  it('accepts each bound of every numeric option and rejects just past it, naming the option', () => {
    for (const [name, spec] of Object.entries(GATE_OPTION_SPECS)) {
      expect(resolveGateOptions({ redis: client, [name]: spec.min })[name as keyof typeof GATE_OPTION_SPECS]).to.equal(spec.min);
      expect(resolveGateOptions({ redis: client, [name]: spec.max })[name as keyof typeof GATE_OPTION_SPECS]).to.equal(spec.max);
      for (const bad of [spec.max + 1, spec.min - 1, Number.NaN, Number.POSITIVE_INFINITY, '5' as unknown as number]) {
        expect(issuesOf({ redis: client, [name]: bad }).map((i) => i.field), `${name}=${String(bad)}`).to.deep.equal([name]);
      }
    }
  });

  it('rejects a fraction where a whole number is required', () => {
    expect(issuesOf({ redis: client, rollingCountBuckets: 2.5 })).to.deep.equal([
      { field: 'rollingCountBuckets', message: 'must be a whole number in [1, 1000], got 2.5' },
    ]);
  });

  it('reports every bad option in one error, in the shape ConfigError uses', () => {
    const issues = issuesOf({ redisUrl: 'http://x', timeoutMs: 0, keyPrefix: 'a b', now: 5 as unknown as () => number });
    expect(issues.map((i) => i.field)).to.have.members(['timeoutMs', 'redisUrl', 'keyPrefix', 'now']);
    for (const issue of issues) expect(issue).to.have.keys(['field', 'message']);
  });

  it('requires exactly one of redis and redisUrl', () => {
    expect(issuesOf({}).map((i) => i.field)).to.deep.equal(['redis']);
    expect(issuesOf({ redis: client, redisUrl: 'redis://127.0.0.1' }).map((i) => i.field)).to.deep.equal(['redis']);
  });
});
