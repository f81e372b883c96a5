import type { Telemetry } from '@flowline/telemetry';
import type { HugepagePool } from './sysfs';

type Meter = Telemetry['meter'];

export interface DeviceCounts {
  resourceName: string;
  healthy: number;
  unhealthy: number;
}

/** The daemon's instruments; gauges read the daemon's state when scraped. */
export class PluginMetrics {
  private readonly allocations;
  private readonly allocatedDevices;
  private readonly registrations;
  private readonly configReloads;
  private readonly serverRestarts;

  constructor(meter: Meter, counts: () => DeviceCounts[], hugepages: () => HugepagePool[]) {
    this.allocations = meter.createCounter('flowline_device_plugin_allocations', {
      description: 'Allocate container requests answered, by resource and result',
    });
    this.allocatedDevices = meter.createCounter('flowline_device_plugin_allocated_devices', {
      description: 'Devices handed to containers by Allocate, by resource',
    });
    this.registrations = meter.createCounter('flowline_device_plugin_registrations', {
      description:
        'Registrations with kubelet, by resource and reason (start, kubelet_restart, server_restart, config)',
    });
    this.configReloads = meter.createCounter('flowline_device_plugin_config_reloads', {
      description:
        'Config reloads, by result (ok; partial: applied, some pools failed to update; ' +
        'invalid: rejected; failed: could not be applied, retried)',
    });
    this.serverRestarts = meter.createCounter('flowline_device_plugin_server_restarts', {
      description: 'DevicePlugin gRPC servers restarted, by resource and reason',
    });
    meter
      .createObservableGauge('flowline_device_plugin_devices', {
        description: 'Devices advertised to kubelet, by resource and health',
      })
      .addCallback((result) => {
        for (const c of counts()) {
          result.observe(c.healthy, { resource: c.resourceName, health: 'Healthy' });
          result.observe(c.unhealthy, { resource: c.resourceName, health: 'Unhealthy' });
        }
      });
    meter
      .createObservableGauge('flowline_device_plugin_hugepages', {
        description:
          'Hugepages per size and NUMA node (numa_node "all": system-wide), total and free',
      })
      .addCallback((result) => {
        for (const h of hugepages()) {
          const attrs = {
            size: h.sizeName,
            numa_node: h.numaNode === undefined ? 'all' : String(h.numaNode),
          };
          result.observe(h.total, { ...attrs, state: 'total' });
          result.observe(h.free, { ...attrs, state: 'free' });
        }
      });
  }

  allocated(resourceName: string, devices: number, ok: boolean): void {
    this.allocations.add(1, { resource: resourceName, result: ok ? 'ok' : 'refused' });
    if (ok) this.allocatedDevices.add(devices, { resource: resourceName });
  }

  registered(resourceName: string, reason: string): void {
    this.registrations.add(1, { resource: resourceName, reason });
  }

  configReloaded(result: 'ok' | 'partial' | 'invalid' | 'failed'): void {
    this.configReloads.add(1, { result });
  }

  serverRestarted(resourceName: string, reason: string): void {
    this.serverRestarts.add(1, { resource: resourceName, reason });
  }
}
