#!/usr/bin/env node
// Runs the first "bin" entry of a workspace's package.json: run-bin.mjs services/firewall [args].
// Images call this instead of naming the entry file, which belongs to the service.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [dir, ...args] = process.argv.slice(2);
if (!dir) {
  console.error('usage: run-bin.mjs <workspace folder, e.g. services/firewall> [args...]');
  process.exit(2);
}
const root = resolve(process.env.FLOWLINE_APP_DIR ?? '/app', dir);
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const bin = typeof pkg.bin === 'string' ? pkg.bin : Object.values(pkg.bin ?? {})[0];
if (typeof bin !== 'string') {
  console.error(
    `${join(root, 'package.json')} has no "bin" entry: add one naming the service's start file`,
  );
  process.exit(2);
}
process.argv = [process.argv[0], join(root, bin), ...args];
await import(pathToFileURL(join(root, bin)).href);
