import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** The Python package's folder. */
export const PYTHON_PACKAGE_DIR = join(__dirname, '..', 'clients', 'python');

/**
 * The Python interpreter that has the package `p28_budget_gate` and `redis` importable:
 * `P28_PYTHON`, else the package's own virtualenv (`clients/python/.venv`, which `.ci/run` creates),
 * else `python3`. Undefined when none has them.
 */
export function packagePython(): string | undefined {
  const candidates = [process.env.P28_PYTHON, join(PYTHON_PACKAGE_DIR, '.venv', 'bin', 'python'), 'python3'].filter((c): c is string => Boolean(c));
  for (const python of candidates) {
    if (python.includes('/') && !existsSync(python)) continue;
    const probe = spawnSync(python, ['-c', 'import p28_budget_gate, redis'], { cwd: PYTHON_PACKAGE_DIR, timeout: 15000 });
    if (probe.status === 0) return python;
  }
  return undefined;
}

/**
 * For a `before` hook: the interpreter, or a skip on a developer machine without it. In CI
 * (`CI` set) a missing one fails the suite: the Python tests never skip there.
 */
export function requirePython(context: Mocha.Context): string {
  const python = packagePython();
  if (python) return python;
  if (process.env.CI) throw new Error('the Python package p28_budget_gate and redis are required in CI (.ci/run installs them in clients/python/.venv)');
  context.skip();
}
