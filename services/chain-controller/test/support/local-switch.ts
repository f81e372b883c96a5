import type { OvsDpdk } from '@flowline/ovs';
import type { SwitchConfig } from '../../src/index';

/** The controller beside a private OVS: its unix sockets, and the CNI plugin's socket dir. */
export function localSwitch(ovs: OvsDpdk, socketDir: string): SwitchConfig {
  return {
    mode: 'local',
    ovsdbRemote: `unix:${ovs.dbSocket}`,
    openflowRemote: `unix:${ovs.runDir}/${ovs.bridge}.mgmt`,
    socketDir,
  };
}
