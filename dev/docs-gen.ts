import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderAll } from './generated-docs';

// `npm run docs:gen`: rewrites the generated tables and files from the code's declarations.
for (const { file, current, generated } of renderAll()) {
  if (generated === current) continue;
  writeFileSync(join(__dirname, '..', file), generated);
  console.log(`docs:gen wrote ${file}`);
}
