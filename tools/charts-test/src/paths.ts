import { join } from 'node:path';

/** The repository root and the places this project tests. */
export const projectRoot = join(__dirname, '..');
export const repoRoot = join(projectRoot, '..', '..');
export const chartsDir = join(repoRoot, 'charts');
export const kindDir = join(repoRoot, 'tools', 'kind');
/** Where helm is extracted (git-ignored). */
export const binDir = join(projectRoot, '.bin');
