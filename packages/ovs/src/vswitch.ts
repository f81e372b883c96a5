import { decodeMap, decodeOptional, decodeSet, map, namedUuid, set, uuid, type Row } from './atoms';
import { OvsError, OvsdbTransactionError } from './errors';
import type { Operation, OvsdbClient } from './ovsdb-client';

export const VSWITCH_DB = 'Open_vSwitch';

export interface BridgeOptions {
  /** 'netdev' for the userspace (DPDK) datapath; 'system' for the kernel one. */
  datapathType?: 'netdev' | 'system';
  failMode?: 'secure' | 'standalone';
  /** OpenFlow versions; default OpenFlow10, 13, 14 and 15 (bundles need 1.4+). */
  protocols?: string[];
  otherConfig?: Record<string, string>;
  externalIds?: Record<string, string>;
}

export interface PortOptions {
  /** Interface type: 'dpdkvhostuserclient', 'internal', 'dpdk', '' (system) ... */
  type?: string;
  /** Interface options, e.g. { 'vhost-server-path': '/run/x/net1.sock' }. */
  options?: Record<string, string>;
  mtuRequest?: number;
  /** Stored on both the Port and its Interface. */
  externalIds?: Record<string, string>;
}

export interface InterfaceInfo {
  uuid: string;
  name: string;
  type: string;
  options: Record<string, string>;
  externalIds: Record<string, string>;
  ofport: number | undefined;
  linkState: string | undefined;
  adminState: string | undefined;
  mtu: number | undefined;
  macInUse: string | undefined;
  error: string | undefined;
  statistics: Record<string, number>;
}

export interface PortInfo {
  uuid: string;
  name: string;
  externalIds: Record<string, string>;
  interfaces: InterfaceInfo[];
}

export interface BridgeInfo {
  uuid: string;
  name: string;
  datapathType: string;
  externalIds: Record<string, string>;
  portUuids: string[];
}

/** A named bridge or port is not in the database. */
export class OvsNotFoundError extends OvsError {}

function toInterface(row: Row): InterfaceInfo {
  const stats: Record<string, number> = {};
  for (const [k, v] of Object.entries(decodeMap(row.statistics))) stats[k] = Number(v);
  return {
    uuid: String(decodeSet(row._uuid)[0]),
    name: String(row.name),
    type: String(row.type ?? ''),
    options: decodeMap(row.options),
    externalIds: decodeMap(row.external_ids),
    ofport: decodeOptional<number>(row.ofport),
    linkState: decodeOptional<string>(row.link_state),
    adminState: decodeOptional<string>(row.admin_state),
    mtu: decodeOptional<number>(row.mtu),
    macInUse: decodeOptional<string>(row.mac_in_use),
    error: decodeOptional<string>(row.error),
    statistics: stats,
  };
}

const whereName = (name: string): unknown[][] => [['name', '==', name]];

/**
 * Typed helpers over the Open_vSwitch database: bridges, ports and interfaces. Adds use
 * named-uuid transactions guarded by `wait` operations, so two concurrent adds of one name
 * never create two rows; adds and deletes are idempotent.
 */
export class VSwitch {
  constructor(readonly client: OvsdbClient) {}

  private async select(table: string, where: unknown[][], columns?: string[]): Promise<Row[]> {
    const op: Operation = { op: 'select', table, where };
    if (columns) op.columns = columns;
    const [r] = await this.client.transact(VSWITCH_DB, [op]);
    return r?.rows ?? [];
  }

  /** The root row's uuid, other_config and status fields. */
  async getOpenVSwitch(): Promise<{
    uuid: string;
    otherConfig: Record<string, string>;
    externalIds: Record<string, string>;
    dpdkInitialized: boolean;
    nextCfg: number;
    curCfg: number;
    bridgeUuids: string[];
  }> {
    const rows = await this.select('Open_vSwitch', []);
    const row = rows[0];
    if (!row)
      throw new OvsNotFoundError('the Open_vSwitch table has no row; run initialize() first');
    return {
      uuid: String(decodeSet(row._uuid)[0]),
      otherConfig: decodeMap(row.other_config),
      externalIds: decodeMap(row.external_ids),
      dpdkInitialized: row.dpdk_initialized === true,
      nextCfg: Number(row.next_cfg),
      curCfg: Number(row.cur_cfg),
      bridgeUuids: decodeSet(row.bridges).map(String),
    };
  }

  /** Creates the root row when missing (what `ovs-vsctl init` does). Idempotent. */
  async initialize(otherConfig: Record<string, string> = {}): Promise<void> {
    const rows = await this.select('Open_vSwitch', [], ['_uuid']);
    if (rows.length === 0) {
      try {
        await this.client.transact(VSWITCH_DB, [
          {
            op: 'wait',
            table: 'Open_vSwitch',
            where: [],
            columns: ['_uuid'],
            until: '==',
            rows: [],
            timeout: 0,
          },
          { op: 'insert', table: 'Open_vSwitch', row: { other_config: map(otherConfig) } },
        ]);
        return;
      } catch (err) {
        if (!(err instanceof OvsdbTransactionError && err.index === 0)) throw err;
      }
    }
    if (Object.keys(otherConfig).length > 0) await this.setOtherConfig(otherConfig);
  }

  /** Sets keys of Open_vSwitch other_config (dpdk-init, pmd-cpu-mask, ...), keeping others. */
  async setOtherConfig(values: Record<string, string>): Promise<void> {
    await this.setRootMap('other_config', values);
  }

  /** Sets keys of Open_vSwitch external_ids (e.g. flowline-underlay-address), keeping others. */
  async setExternalIds(values: Record<string, string>): Promise<void> {
    await this.setRootMap('external_ids', values);
  }

  private async setRootMap(
    column: 'other_config' | 'external_ids',
    values: Record<string, string>,
  ): Promise<void> {
    await this.client.transact(VSWITCH_DB, [
      {
        op: 'mutate',
        table: 'Open_vSwitch',
        where: [],
        mutations: [[column, 'delete', set(Object.keys(values))]],
      },
      {
        op: 'mutate',
        table: 'Open_vSwitch',
        where: [],
        mutations: [[column, 'insert', map(values)]],
      },
    ]);
  }

  /** Asks ovs-vswitchd to apply the config; wait for it with `waitForConfig`. Returns next_cfg. */
  async bumpConfig(): Promise<number> {
    const [, r] = await this.client.transact(VSWITCH_DB, [
      { op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['next_cfg', '+=', 1]] },
      { op: 'select', table: 'Open_vSwitch', where: [], columns: ['next_cfg'] },
    ]);
    return Number(r?.rows?.[0]?.next_cfg);
  }

  async listBridges(): Promise<BridgeInfo[]> {
    const rows = await this.select(
      'Bridge',
      [],
      ['_uuid', 'name', 'datapath_type', 'external_ids', 'ports'],
    );
    return rows.map((row) => ({
      uuid: String(decodeSet(row._uuid)[0]),
      name: String(row.name),
      datapathType: String(row.datapath_type ?? ''),
      externalIds: decodeMap(row.external_ids),
      portUuids: decodeSet(row.ports).map(String),
    }));
  }

  async getBridge(name: string): Promise<BridgeInfo | undefined> {
    return (await this.listBridges()).find((b) => b.name === name);
  }

  /**
   * Adds a bridge with its internal port of the same name, as `ovs-vsctl add-br` does.
   * Returns false when it already existed (then nothing is changed).
   */
  async addBridge(name: string, options: BridgeOptions = {}): Promise<boolean> {
    const row: Row = {
      name,
      ports: namedUuid('port'),
      datapath_type: options.datapathType ?? '',
      protocols: set(options.protocols ?? ['OpenFlow10', 'OpenFlow13', 'OpenFlow14', 'OpenFlow15']),
      other_config: map(options.otherConfig ?? {}),
      external_ids: map(options.externalIds ?? {}),
    };
    if (options.failMode) row.fail_mode = options.failMode;
    try {
      await this.client.transact(VSWITCH_DB, [
        {
          op: 'wait',
          table: 'Bridge',
          where: whereName(name),
          columns: ['name'],
          until: '==',
          rows: [],
          timeout: 0,
        },
        { op: 'insert', table: 'Interface', row: { name, type: 'internal' }, 'uuid-name': 'iface' },
        {
          op: 'insert',
          table: 'Port',
          row: { name, interfaces: namedUuid('iface') },
          'uuid-name': 'port',
        },
        { op: 'insert', table: 'Bridge', row, 'uuid-name': 'bridge' },
        {
          op: 'mutate',
          table: 'Open_vSwitch',
          where: [],
          mutations: [['bridges', 'insert', set([namedUuid('bridge')])]],
        },
      ]);
      return true;
    } catch (err) {
      if (err instanceof OvsdbTransactionError && err.index === 0) return false;
      throw err;
    }
  }

  /** Deletes a bridge and (by garbage collection) its ports. Returns false when it was absent. */
  async delBridge(name: string): Promise<boolean> {
    const bridge = await this.getBridge(name);
    if (!bridge) return false;
    await this.client.transact(VSWITCH_DB, [
      {
        op: 'mutate',
        table: 'Open_vSwitch',
        where: [],
        mutations: [['bridges', 'delete', set([uuid(bridge.uuid)])]],
      },
    ]);
    return true;
  }

  /**
   * Adds a port with one interface to a bridge, atomically. Returns false when a port of that
   * name already exists anywhere (then nothing is changed). Throws OvsNotFoundError when the
   * bridge does not exist.
   */
  async addPort(bridge: string, name: string, options: PortOptions = {}): Promise<boolean> {
    const iface: Row = {
      name,
      type: options.type ?? '',
      options: map(options.options ?? {}),
      external_ids: map(options.externalIds ?? {}),
    };
    if (options.mtuRequest !== undefined) iface.mtu_request = options.mtuRequest;
    try {
      await this.client.transact(VSWITCH_DB, [
        {
          op: 'wait',
          table: 'Port',
          where: whereName(name),
          columns: ['name'],
          until: '==',
          rows: [],
          timeout: 0,
        },
        {
          op: 'wait',
          table: 'Bridge',
          where: whereName(bridge),
          columns: ['name'],
          until: '==',
          rows: [{ name: bridge }],
          timeout: 0,
        },
        { op: 'insert', table: 'Interface', row: iface, 'uuid-name': 'iface' },
        {
          op: 'insert',
          table: 'Port',
          row: {
            name,
            interfaces: namedUuid('iface'),
            external_ids: map(options.externalIds ?? {}),
          },
          'uuid-name': 'port',
        },
        {
          op: 'mutate',
          table: 'Bridge',
          where: whereName(bridge),
          mutations: [['ports', 'insert', set([namedUuid('port')])]],
        },
      ]);
      return true;
    } catch (err) {
      if (err instanceof OvsdbTransactionError && err.index === 0) return false;
      if (err instanceof OvsdbTransactionError && err.index === 1)
        throw new OvsNotFoundError(`bridge ${bridge} does not exist; create it first (addBridge)`, {
          bridge,
          port: name,
        });
      throw err;
    }
  }

  /** Removes a port from whatever bridge holds it. Returns false when it was absent. */
  async delPort(name: string): Promise<boolean> {
    const rows = await this.select('Port', whereName(name), ['_uuid']);
    const row = rows[0];
    if (!row) return false;
    const portUuid = uuid(String(decodeSet(row._uuid)[0]));
    const [r] = await this.client.transact(VSWITCH_DB, [
      {
        op: 'mutate',
        table: 'Bridge',
        where: [['ports', 'includes', portUuid]],
        mutations: [['ports', 'delete', portUuid]],
      },
    ]);
    return (r?.count ?? 0) > 0;
  }

  async getInterface(name: string): Promise<InterfaceInfo | undefined> {
    const rows = await this.select('Interface', whereName(name));
    return rows[0] ? toInterface(rows[0]) : undefined;
  }

  /** The ports of a bridge with their interfaces (all of a bridge's rows in one transaction). */
  async listPorts(bridge: string): Promise<PortInfo[]> {
    const [b, p, i] = await this.client.transact(VSWITCH_DB, [
      { op: 'select', table: 'Bridge', where: whereName(bridge), columns: ['ports'] },
      {
        op: 'select',
        table: 'Port',
        where: [],
        columns: ['_uuid', 'name', 'external_ids', 'interfaces'],
      },
      { op: 'select', table: 'Interface', where: [] },
    ]);
    const bridgeRow = b?.rows?.[0];
    if (!bridgeRow) throw new OvsNotFoundError(`bridge ${bridge} does not exist`, { bridge });
    const portUuids = new Set(decodeSet(bridgeRow.ports).map(String));
    const ifaces = new Map(
      (i?.rows ?? []).map((row) => [String(decodeSet(row._uuid)[0]), toInterface(row)]),
    );
    return (p?.rows ?? [])
      .filter((row) => portUuids.has(String(decodeSet(row._uuid)[0])))
      .map((row) => ({
        uuid: String(decodeSet(row._uuid)[0]),
        name: String(row.name),
        externalIds: decodeMap(row.external_ids),
        interfaces: decodeSet(row.interfaces)
          .map((u) => ifaces.get(String(u)))
          .filter((x): x is InterfaceInfo => x !== undefined),
      }));
  }

  /**
   * Polls an interface until `predicate` holds (e.g. ofport assigned, link_state up), or
   * throws OvsError after `timeoutMs` with the last state seen.
   */
  async waitForInterface(
    name: string,
    predicate: (iface: InterfaceInfo) => boolean,
    timeoutMs = 10_000,
    what = 'the expected state',
  ): Promise<InterfaceInfo> {
    const deadline = Date.now() + timeoutMs;
    let last: InterfaceInfo | undefined;
    for (;;) {
      last = await this.getInterface(name);
      if (last && predicate(last)) return last;
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new OvsError(`interface ${name} did not reach ${what} within ${timeoutMs} ms`, {
      name,
      last,
    });
  }
}
