// Generates TypeScript types for every .proto under proto/ into src/generated (not committed).
// Options here must match the loader's (src/loader.ts) so the types describe what it returns.
import { execFileSync } from 'node:child_process';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const protoRoot = join(pkgRoot, 'proto');
const outDir = join(pkgRoot, 'src', 'generated');

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name);
    return statSync(full).isDirectory() ? walk(full) : full.endsWith('.proto') ? [full] : [];
  });
}

const files = walk(protoRoot).map((f) => relative(protoRoot, f));
const require = createRequire(import.meta.url);
const genTypes = join(
  dirname(require.resolve('@grpc/proto-loader/package.json')),
  'build',
  'bin',
  'proto-loader-gen-types.js',
);
rmSync(outDir, { recursive: true, force: true });
execFileSync(
  process.execPath,
  [
    genTypes,
    // Files first: --includeDirs is an array option and would swallow them.
    ...files,
    '--longs=String',
    '--enums=String',
    '--defaults',
    '--oneofs',
    '--grpcLib=@grpc/grpc-js',
    `--outDir=${outDir}`,
    `--includeDirs=${protoRoot}`,
  ],
  { stdio: 'inherit' },
);
console.log(`generated types for ${files.length} proto files into ${relative(pkgRoot, outDir)}`);
