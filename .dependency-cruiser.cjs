// The layering of the package, checked by `npm run lint` (docs/architecture.md draws it).
//
//   types  <-  lib/engine  <-  lib/redis  <-  plugin  <-  lib/config.ts (and config-values.ts), lib/worker  <-  lib/cli.ts (and the other lib/*.ts of the CLI), index.ts
//
// plus the base files at the top of lib/ (BASE: logger, options-error, console-capture, ...), which import only
// types. Each room may import only the rooms listed for it; any other import of the package's own
// code fails, type-only imports included (`tsPreCompilationDeps`). A new file at the top of lib/
// belongs to the CLI's room unless it is added to BASE. dev/, bench/, demo/ and test/ are never
// shipped: they may import anything shipped, and only test/ imports test/.
const path = require('node:path');

const BASE = '^lib/(logger|options-error|registry-metrics|cause-log|package-version|console-capture)\\.ts$';
/** The worker's configuration: the variables (`config.ts`) and how each one's text is read (`config-values.ts`). */
const CONFIG = '^lib/config(-values)?\\.ts$';
/** The CLI's room: lib/commands/ and every file at the top of lib/ that is neither a base file nor the config. */
const CLI = '^lib/(?!(logger|options-error|registry-metrics|cause-log|package-version|console-capture|config|config-values)\\.ts$)[^/]+\\.ts$|^lib/commands/';
const ROOMS = {
  types: '^types/',
  base: BASE,
  engine: '^lib/engine/',
  redis: '^lib/redis/',
  plugin: '^plugin/',
  config: CONFIG,
  worker: '^lib/(worker|readiness)/',
  cli: CLI,
  index: '^index\\.ts$',
  dev: '^dev/',
};
/** The package's own code: an import of anything else (node_modules, Node's core) is not an arrow between rooms. */
const OWN = '^(index\\.ts$|lib/|plugin/|types/|dev/|bench/|demo/|test/)';
const any = (...rooms) => rooms.map((room) => ROOMS[room]).join('|');

/** A rule: files of `from` may import, of the package's own code, only what matches `allowed`. */
const only = (name, comment, from, allowed) => ({
  name,
  comment,
  severity: 'error',
  from: { path: from },
  to: { path: OWN, pathNot: allowed },
});

const SHIPPED = ['types', 'base', 'engine', 'redis', 'plugin', 'config', 'worker', 'cli', 'index'];

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'An import cycle ties two rooms together: neither can change, or be tested, without the other.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    only('types-import-only-types', 'types/ holds the wire formats both sides share; it depends on nothing else of the package.', ROOMS.types, any('types')),
    only('base-imports-only-types', 'The base files at the top of lib/ (logger, options-error, metrics helpers) import only types/ and each other.', BASE, any('types', 'base')),
    only('engine-is-pure', 'lib/engine is the pure budget engine: it imports types/ and itself only.', ROOMS.engine, any('types', 'engine')),
    {
      name: 'engine-and-types-do-no-io',
      comment: 'lib/engine and types/ do no I/O: no Node core module.',
      severity: 'error',
      from: { path: '^(lib/engine|types)/' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'engine-and-types-use-no-io-library',
      comment: 'lib/engine and types/ do no I/O: no Redis, HTTP, logging, metrics or DI library.',
      severity: 'error',
      from: { path: '^(lib/engine|types)/' },
      to: { path: 'node_modules/(ioredis|pino|prom-client|fastify|opossum|commander|tsyringe)/' },
    },
    only('redis-below-plugin-and-worker', 'lib/redis is Redis access for both sides: it never imports the gate, the worker or its config.', ROOMS.redis, any('types', 'base', 'engine', 'redis')),
    only('plugin-never-loads-the-worker', "The gate runs inside the Governor: it never imports the worker, the worker's config or the CLI.", ROOMS.plugin, any('types', 'base', 'engine', 'redis', 'plugin')),
    only('config-below-worker', "lib/config.ts (with config-values.ts) is the worker's configuration: the worker and the CLI read it, it reads neither (nor the gate).", CONFIG, any('types', 'base', 'engine', 'redis', 'config')),
    only('worker-below-cli', 'lib/worker hosts the gate and uses everything below it, never the CLI or the package barrel.', ROOMS.worker, any('types', 'base', 'engine', 'redis', 'plugin', 'config', 'worker')),
    only('shipped-code-imports-no-tools', 'The CLI and the barrel ship: they never import dev/, bench/, demo/ or test/.', any('cli', 'index'), any(...SHIPPED)),
    only('dev-imports-shipped-code', 'dev/ is the shared harness: it builds on shipped code, never on bench/, demo/ or test helpers.', ROOMS.dev, any(...SHIPPED, 'dev')),
    only('tools-import-no-tests', 'bench/ and demo/ use the harness in dev/, never test helpers.', '^(bench|demo)/', any(...SHIPPED, 'dev') + '|^bench/|^demo/'),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports are arrows too: a wrong-way `import type` still ties the layers together.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: path.join(__dirname, 'tsconfig.json') },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.json'] },
  },
};
