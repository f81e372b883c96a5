import { createServer, type Server, type Socket } from 'node:net';
import { JsonStreamSplitter } from '@flowline/ovs';

const uuidOf = (name: string): string =>
  `00000000-0000-4000-8000-${Buffer.from(name).toString('hex').slice(-12).padStart(12, '0')}`;

type Op = {
  op: string;
  table: string;
  where?: unknown[][];
  row?: Record<string, unknown>;
  rows?: Record<string, unknown>[];
};

/**
 * An ovsdb-server stand-in for unit tests (no ovs-vswitchd, no DPDK): answers `transact` from a
 * set of port names (each port with one interface of that name, a dpdkvhostuserclient), so DEL
 * and CHECK can ask whether a port exists. Selects on Port/Interface by name, deletes from a
 * bridge's ports, the bridges in `bridges` (listed, with every port on them) and VSwitch.addPort's
 * transaction (its interface's options and external_ids kept) are served; anything else gets
 * empty rows.
 */
export class FakeOvsdb {
  readonly ports = new Set<string>();
  readonly bridges = new Set<string>();
  /** Interface rows as addPort inserted them, by name. */
  private readonly interfaces = new Map<string, Record<string, unknown>>();
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

  private interfaceRow(name: string): Record<string, unknown> {
    const added = this.interfaces.get(name);
    return {
      _uuid: ['uuid', uuidOf(name)],
      name,
      type: added?.type ?? 'dpdkvhostuserclient',
      options: added?.options ?? ['map', []],
      external_ids: added?.external_ids ?? ['map', []],
      statistics: ['map', []],
    };
  }

  private portRow(name: string): Record<string, unknown> {
    return {
      _uuid: ['uuid', uuidOf(name)],
      name,
      external_ids: this.interfaces.get(name)?.external_ids ?? ['map', []],
      interfaces: ['uuid', uuidOf(name)],
    };
  }

  private bridgeRow(name: string): Record<string, unknown> {
    return {
      _uuid: ['uuid', uuidOf(`bridge ${name}`)],
      name,
      datapath_type: 'netdev',
      external_ids: ['map', []],
      ports: ['set', [...this.ports].map((p) => ['uuid', uuidOf(p)])],
    };
  }

  private answer(m: { method: string; params: unknown[] }): unknown {
    if (m.method !== 'transact') return {};
    const ops = m.params.slice(1) as Op[];
    if (ops.some((op) => op.op === 'insert' && op.table === 'Port')) return this.addPort(ops);
    return ops.map((op) => {
      const name = op.where?.find((w) => w[0] === 'name')?.[2];
      if (op.op === 'mutate') {
        const ref = op.where?.find((w) => w[0] === 'ports')?.[2] as [string, string] | undefined;
        const port = [...this.ports].find((p) => uuidOf(p) === ref?.[1]);
        if (port) {
          this.ports.delete(port);
          this.interfaces.delete(port);
        }
        return { count: port ? 1 : 0 };
      }
      if (op.op !== 'select') return { rows: [] };
      if (op.table === 'Bridge') {
        if (name === undefined) return { rows: [...this.bridges].map((b) => this.bridgeRow(b)) };
        return { rows: this.bridges.has(name as string) ? [this.bridgeRow(name as string)] : [] };
      }
      if (name === undefined && (op.table === 'Port' || op.table === 'Interface'))
        return {
          rows: [...this.ports].map((p) =>
            op.table === 'Port' ? this.portRow(p) : this.interfaceRow(p),
          ),
        };
      if (typeof name !== 'string' || !this.ports.has(name)) return { rows: [] };
      return { rows: [op.table === 'Port' ? this.portRow(name) : this.interfaceRow(name)] };
    });
  }

  /** VSwitch.addPort: wait (no such port), wait (the bridge), insert Interface, Port, mutate. */
  private addPort(ops: Op[]): unknown[] {
    const port = ops.find((op) => op.op === 'insert' && op.table === 'Port')!.row!.name as string;
    const bridge = ops[1]?.where?.find((w) => w[0] === 'name')?.[2] as string;
    if (this.ports.has(port)) return [{ error: 'timed out', details: `port ${port} exists` }];
    if (!this.bridges.has(bridge))
      return [{}, { error: 'timed out', details: `no bridge ${bridge}` }];
    const iface = ops.find((op) => op.op === 'insert' && op.table === 'Interface')!.row!;
    this.interfaces.set(port, iface);
    this.ports.add(port);
    return ops.map((op) =>
      op.op === 'insert'
        ? { uuid: ['uuid', uuidOf(String(op.row?.name))] }
        : op.op === 'mutate'
          ? { count: 1 }
          : {},
    );
  }
}
