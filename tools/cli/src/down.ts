// What `flowline down` prints: everything the agent and the sweep stopped and removed, grouped
// (processes with their pids, switch ports, network namespaces, hugepage files), or that
// nothing was up.
import { type StopReport, isEmptyStopReport } from '@flowline/node';

export function renderStopReport(stopped: StopReport): string {
  if (isEmptyStopReport(stopped)) return 'no node was up; nothing left';
  const lines = ['node down; stopped and removed:'];
  if (stopped.processes.length)
    lines.push(
      `  processes (${stopped.processes.length}): ${stopped.processes.map((p) => `${p.name} (pid ${p.pid})`).join(', ')}`,
    );
  if (stopped.ports.length)
    lines.push(
      `  switch ports (${stopped.ports.length}): ${stopped.ports.map((p) => `${p.pod}/${p.interface}`).join(', ')}`,
    );
  if (stopped.namespaces.length)
    lines.push(
      `  network namespaces (${stopped.namespaces.length}): ${stopped.namespaces.join(', ')}`,
    );
  if (stopped.hugepageFiles) lines.push(`  hugepage files: ${stopped.hugepageFiles}`);
  lines.push('nothing is left');
  return lines.join('\n');
}
