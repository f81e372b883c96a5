import { createServer, type Server, type Socket } from 'node:net';
import { JsonStreamSplitter } from '@flowline/ovs';

const uuidOf = (name: string): string =>
  `00000000-0000-4000-8000-${Buffer.from(name).toString('hex').slice(-12).padStart(12, '0')}`;

/**
 * An ovsdb-server stand-in for unit tests (no ovs-vswitchd, no DPDK): answers `transact` from a
 * set of port names (each port with one interface of that name, a dpdkvhostuserclient), so DEL
 * and CHECK can ask whether a port exists. Selects on Port/Interface by name and deletes from a
 * bridge's ports are served; anything else gets empty rows.
 */
export class FakeOvsdb {
  readonly ports = new Set<string>();
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor(readonly path: string) {
    this.server = createServer((sock) => {
      this.sockets.add(sock);
      sock.on('close', () => this.sockets.delete(sock));
      sock.on('error', () => undefined);
      const splitter = new JsonStreamSplitter();
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => {
        for (const m of splitter.push(d) as { id: unknown; method: string; params: unknown[] }[])
          sock.write(JSON.stringify({ id: m.id, result: this.answer(m), error: null }));
      });
    });
  }

  listen(): Promise<void> {
    return new Promise((resolve) => this.server.listen(this.path, resolve));
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private answer(m: { method: string; params: unknown[] }): unknown {
    if (m.method !== 'transact') return {};
    return (m.params.slice(1) as { op: string; table: string; where?: unknown[][] }[]).map((op) => {
      const name = op.where?.find((w) => w[0] === 'name')?.[2];
      if (op.op === 'mutate') {
        const ref = op.where?.find((w) => w[0] === 'ports')?.[2] as [string, string] | undefined;
        const port = [...this.ports].find((p) => uuidOf(p) === ref?.[1]);
        if (port) this.ports.delete(port);
        return { count: port ? 1 : 0 };
      }
      if (op.op !== 'select' || typeof name !== 'string' || !this.ports.has(name))
        return { rows: [] };
      return {
        rows: [
          {
            _uuid: ['uuid', uuidOf(name)],
            name,
            type: 'dpdkvhostuserclient',
            options: ['map', []],
            external_ids: ['map', []],
            statistics: ['map', []],
          },
        ],
      };
    });
  }
}
