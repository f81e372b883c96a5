import { ensureHelm } from './helm';

/** Extracts helm once before the test files run. */
export default function setup(): void {
  ensureHelm();
}
