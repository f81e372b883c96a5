// Network namespaces and links through iproute2, as the node makes them for its switch, its
// emulated NICs and its pods.
import { execFileSync } from 'node:child_process';
import { type StopReport, netnsExists } from './stop-report';

/** Runs `ip <args>`; throws with ip's stderr when it fails. */
export function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Runs `ip <args>` where failing means it is already undone (teardown is idempotent). */
export function tryIp(args: string[]): void {
  try {
    ip(args);
  } catch {
    // already gone: teardown is idempotent
  }
}

/** Deletes a netns and notes it when it was there. */
export function deleteNetns(name: string, report: StopReport): void {
  if (!netnsExists(name)) return;
  tryIp(['netns', 'del', name]);
  if (!netnsExists(name)) report.namespaces.push(name);
}
