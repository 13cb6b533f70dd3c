// The layering of the package, checked by `npm run lint` (docs/architecture.md draws it).
//
//   types  <-  lib/engine  <-  lib/redis  <-  plugin  <-  lib/config, lib/worker  <-  lib/cli, index.ts
//
// plus the shared base files at the top of lib/ (logger, options-error, registry-metrics, ...), which
// import only types. An arrow points from the importer to what it imports; every import must point
// left. Type-only imports count like any other (`tsPreCompilationDeps`). dev/, bench/, demo/ and
// test/ are never shipped: they may import anything shipped, and only test/ imports test/.
const path = require('node:path');

const SHIPPED_TOOLS = '^(dev|bench|demo|test)/';
const BASE = '^lib/(?!config\\.ts$|cli\\.ts$)[^/]+\\.ts$';

/** A rule forbidding `from` to import anything matching `to`. */
const never = (name, comment, from, to) => ({ name, comment, severity: 'error', from: { path: from }, to: { path: to } });

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'An import cycle ties two rooms together: neither can change, or be tested, without the other.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    never('types-import-only-types', 'types/ holds the wire formats both sides share; it depends on nothing of the package.', '^types/', '^(lib|plugin|dev|bench|demo|test)/|^index\\.ts$'),
    never('base-imports-only-types', 'The base files at the top of lib/ (logger, options-error, metrics helpers) import only types/ and each other.', BASE, '^lib/(engine|redis|worker)/|^lib/(config|cli)\\.ts$|^plugin/|^index\\.ts$|' + SHIPPED_TOOLS),
    never('engine-is-pure', 'lib/engine is the pure budget engine: it imports types/ and itself only.', '^lib/engine/', '^lib/(?!engine/)|^plugin/|^index\\.ts$|' + SHIPPED_TOOLS),
    {
      name: 'engine-and-types-do-no-io',
      comment: 'lib/engine and types/ do no I/O: no Node core module, no Redis, HTTP, logging or metrics library.',
      severity: 'error',
      from: { path: '^(lib/engine|types)/' },
      to: { dependencyTypes: ['core'] },
    },
    never('engine-and-types-use-no-io-library', 'lib/engine and types/ do no I/O.', '^(lib/engine|types)/', 'node_modules/(ioredis|pino|prom-client|fastify|opossum|commander|tsyringe)/'),
    never('redis-below-plugin-and-worker', 'lib/redis is Redis access for both sides: it never imports the gate, the worker or its config.', '^lib/redis/', '^lib/worker/|^lib/(config|cli)\\.ts$|^plugin/|^index\\.ts$|' + SHIPPED_TOOLS),
    never('plugin-never-loads-the-worker', "The gate runs inside the Governor: it never imports the worker, the worker's config or the CLI.", '^plugin/', '^lib/worker/|^lib/(config|cli)\\.ts$|^index\\.ts$|' + SHIPPED_TOOLS),
    never('config-below-worker', "lib/config.ts is the worker's configuration: the worker and the CLI read it, it reads neither (nor the gate).", '^lib/config\\.ts$', '^lib/worker/|^lib/cli\\.ts$|^plugin/|^index\\.ts$|' + SHIPPED_TOOLS),
    never('worker-below-cli', 'lib/worker hosts the gate and uses everything below it, never the CLI or the package barrel.', '^lib/worker/', '^lib/cli\\.ts$|^index\\.ts$|' + SHIPPED_TOOLS),
    never('cli-ships-alone', 'The CLI and the barrel ship: they never import dev/, bench/, demo/ or test/.', '^(lib/cli|index)\\.ts$', SHIPPED_TOOLS),
    never('tools-import-no-tests', 'dev/, bench/ and demo/ use the harness in dev/, never test helpers.', '^(dev|bench|demo)/', '^test/'),
    never('dev-imports-no-bench-or-demo', 'dev/ is the shared harness: bench/ and demo/ build on it, not the other way round.', '^dev/', '^(bench|demo)/'),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports are arrows too: a wrong-way `import type` still ties the layers together.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: path.join(__dirname, 'tsconfig.json') },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.json'] },
  },
};
