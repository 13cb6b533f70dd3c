import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The version in this package's package.json, found by walking up from this file: it sits one
 * level up from `lib/` in the sources and two from `dist/lib/` in the built package.
 */
function readPackageVersion(): string {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'portfolio-risk-governor' && pkg.version) return pkg.version;
    }
    if (dirname(dir) === dir) return '0.0.0';
  }
}

/** The package version, for `p28-worker --version` and /openapi.json. */
export const PACKAGE_VERSION: string = readPackageVersion();
