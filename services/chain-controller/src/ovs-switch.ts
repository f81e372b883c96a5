import type { FlowStats, OpenFlow, VSwitch } from '@flowline/ovs';
import type { ChainSwitch } from './chain-switch';
import type { SwitchPortRecord } from './directory';

/** br-flowline through packages/ovs: OVSDB for its ports, ovs-ofctl bundles for its flows. */
export class OvsChainSwitch implements ChainSwitch {
  constructor(
    private readonly vswitch: VSwitch,
    private readonly openflow: OpenFlow,
    private readonly bridge: string,
  ) {}

  apply(flows: string[]): Promise<void> {
    return this.openflow.applyFlows(flows, 'replace');
  }

  flowStats(): Promise<FlowStats[]> {
    return this.openflow.dumpFlows();
  }

  async portNames(): Promise<Set<string>> {
    return new Set((await this.ports()).map((p) => p.name));
  }

  /** The bridge's ports with their external_ids (the CNI plugin's record of each pod port). */
  async ports(): Promise<SwitchPortRecord[]> {
    return (await this.vswitch.listPorts(this.bridge)).map((p) => ({
      name: p.name,
      externalIds: p.externalIds,
    }));
  }

  close(): void {
    this.vswitch.client.close();
  }
}
