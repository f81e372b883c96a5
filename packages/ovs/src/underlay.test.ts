import { describe, expect, it } from 'vitest';
import {
  TUNNEL_PEER_ID,
  TunnelSetupError,
  UNDERLAY_ADDRESS_ID,
  ensureTunnelPort,
  listTunnelPeers,
  readUnderlayAddress,
  tunnelPortName,
  type TunnelBridge,
} from './underlay';
import { OvsError } from './errors';
import type { InterfaceInfo, PortInfo, PortOptions, VSwitch } from './vswitch';

/** A chain bridge in memory: the ports added (by name, with their options) and their ofports. */
function memoryBridge(error?: string): TunnelBridge & { added: Map<string, PortOptions> } {
  const added = new Map<string, PortOptions>();
  return {
    bridge: 'br-flowline',
    added,
    vswitch: {
      addPort: async (_bridge: string, name: string, options: PortOptions = {}) => {
        if (added.has(name)) return false;
        added.set(name, options);
        return true;
      },
      waitForInterface: async (name: string) =>
        ({ name, ofport: 7, ...(error ? { error } : {}) }) as InterfaceInfo,
      delPort: async (name: string) => added.delete(name),
      listPorts: async () => [],
    },
  };
}

describe('ensureTunnelPort', () => {
  it("adds the Geneve port to the peer's address once, as addTunnelPeer does", async () => {
    const sw = memoryBridge();
    const port = tunnelPortName('198.18.0.2');
    expect(await ensureTunnelPort(sw, '198.18.0.2')).toEqual({ port, created: true });
    expect(sw.added.get(port)).toEqual({
      type: 'geneve',
      options: { remote_ip: '198.18.0.2', key: 'flow', dst_port: '6081' },
      externalIds: { [TUNNEL_PEER_ID]: '198.18.0.2' },
    });
    expect(await ensureTunnelPort(sw, '198.18.0.2')).toEqual({ port, created: false });
    expect(sw.added.size).toBe(1);
  });

  it('refuses a peer that is not an address, and an interface OVS cannot open, naming the bridge', async () => {
    const bad = await ensureTunnelPort(memoryBridge(), '198.18.0.2/24').catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(TunnelSetupError);
    expect((bad as Error).message).toMatch(/"198\.18\.0\.2\/24" is not an IP address/);
    const err = await ensureTunnelPort(memoryBridge('no such device'), '198.18.0.2').catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TunnelSetupError);
    expect((err as Error).message).toMatch(
      /^adding tunnel port gnv[0-9a-f]{10} to 198\.18\.0\.2 on bridge br-flowline: OVS could not open it: no such device$/,
    );
  });
});

describe('ensureTunnelPort when OVS does not open the port', () => {
  /** A bridge whose tunnel interface never gets an ofport (`wait` rejects) or reports `error`. */
  function failingBridge(
    wait: 'timeout' | 'error',
    existing = false,
  ): TunnelBridge & { ports: Set<string>; deleted: string[] } {
    const ports = new Set<string>(existing ? [tunnelPortName('198.18.0.2')] : []);
    const deleted: string[] = [];
    return {
      bridge: 'br-flowline',
      ports,
      deleted,
      vswitch: {
        addPort: async (_bridge: string, name: string) => {
          if (ports.has(name)) return false;
          ports.add(name);
          return true;
        },
        waitForInterface: async (name: string, _p: unknown, timeoutMs = 10_000) => {
          if (wait === 'timeout')
            throw new OvsError(
              `interface ${name} did not reach an OpenFlow port number within ${timeoutMs} ms`,
              { name },
            );
          return { name, ofport: -1, error: 'could not add network device' } as InterfaceInfo;
        },
        delPort: async (name: string) => {
          deleted.push(name);
          return ports.delete(name);
        },
        listPorts: async () => [],
      },
    };
  }
  const port = tunnelPortName('198.18.0.2');

  it('removes the port it added when the interface never gets an OpenFlow port number', async () => {
    const sw = failingBridge('timeout');
    const err = await ensureTunnelPort(sw, '198.18.0.2', { timeoutMs: 50 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TunnelSetupError);
    expect((err as Error).message).toMatch(/did not reach an OpenFlow port number within 50 ms/);
    expect(sw.deleted).toEqual([port]);
    expect(sw.ports.size).toBe(0);
  });

  it('removes the port it added when OVS reports an error on it (ofport -1)', async () => {
    const sw = failingBridge('error');
    const err = await ensureTunnelPort(sw, '198.18.0.2').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TunnelSetupError);
    expect((err as Error).message).toMatch(/OVS could not open it: could not add network device$/);
    expect(sw.deleted).toEqual([port]);
    expect(sw.ports.size).toBe(0);
  });

  it('checks a port that was there as a new one, and leaves it (it did not add it)', async () => {
    const sw = failingBridge('error', true);
    await expect(ensureTunnelPort(sw, '198.18.0.2')).rejects.toThrow(/OVS could not open it/);
    expect(sw.deleted).toEqual([]);
  });

  it('says so when removing the port fails too, keeping the first error as the cause', async () => {
    const sw = failingBridge('error');
    sw.vswitch.delPort = async () => {
      throw new Error('connection to ovsdb-server closed');
    };
    const err = await ensureTunnelPort(sw, '198.18.0.2').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TunnelSetupError);
    expect((err as Error).message).toMatch(
      /OVS could not open it: could not add network device; removing the port again failed too: connection to ovsdb-server closed$/,
    );
  });
});

describe('readUnderlayAddress', () => {
  const root = (externalIds: Record<string, string>): Pick<VSwitch, 'getOpenVSwitch'> => ({
    getOpenVSwitch: async () => ({
      uuid: 'u',
      otherConfig: {},
      externalIds,
      dpdkInitialized: true,
      nextCfg: 1,
      curCfg: 1,
      bridgeUuids: [],
    }),
  });

  it('reads the recorded address without its prefix length', async () => {
    expect(await readUnderlayAddress(root({ [UNDERLAY_ADDRESS_ID]: '10.0.0.5/24' }))).toBe(
      '10.0.0.5',
    );
    expect(await readUnderlayAddress(root({ [UNDERLAY_ADDRESS_ID]: 'fd00::5/64' }))).toBe(
      'fd00::5',
    );
    expect(await readUnderlayAddress(root({ [UNDERLAY_ADDRESS_ID]: '10.0.0.6' }))).toBe('10.0.0.6');
  });

  it('is undefined when none is recorded, and refuses one that is not an address', async () => {
    expect(await readUnderlayAddress(root({}))).toBeUndefined();
    await expect(readUnderlayAddress(root({ [UNDERLAY_ADDRESS_ID]: 'interface' }))).rejects.toThrow(
      /flowline-underlay-address is "interface", not an address/,
    );
  });
});

describe('listTunnelPeers', () => {
  it('lists the tunnel ports by peer, leaving out one OVS failed to open', async () => {
    const port = (name: string, peer: string | undefined, iface: Partial<InterfaceInfo>) =>
      ({
        name,
        externalIds: peer ? { [TUNNEL_PEER_ID]: peer } : {},
        interfaces: [{ name, ...iface } as InterfaceInfo],
      }) as PortInfo;
    const sw = {
      bridge: 'br-flowline',
      vswitch: {
        listPorts: async () => [
          port('gnv-ok', '198.18.0.2', { ofport: 5 }),
          port('gnv-failed', '198.18.0.3', { ofport: -1, error: 'could not add network device' }),
          port('gnv-opening', '198.18.0.4', { ofport: undefined }),
          port('pod-net1', undefined, { ofport: 6 }),
        ],
      },
    } as unknown as TunnelBridge;
    expect([...(await listTunnelPeers(sw))]).toEqual([
      ['198.18.0.2', 'gnv-ok'],
      ['198.18.0.4', 'gnv-opening'],
    ]);
  });
});
