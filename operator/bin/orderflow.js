#!/usr/bin/env node
/**
 * The `orderflow` bin. npm links a package's bins when it installs it, and skips a bin whose file
 * does not exist — in a fresh clone `dist/` is made later by `npm run build`, so a bin pointing into
 * dist/ is never linked (and `npx orderflow` then asks the registry for a package of that name).
 * The link points at this committed file instead, which loads the built CLI.
 */
import { existsSync } from 'node:fs';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error('orderflow: the CLI is not built yet — run `npm run build` in the repository first');
  process.exit(1);
}
await import(main.href);
