// Kubelet's device plugin API v1beta1 (package `v1beta1`): loader and generated types under
// short names. The proto is written from kubelet's public definition with its field numbers.
import type { ProtoGrpcType } from './generated/deviceplugin';
import { loadProto } from './loader';

/** Path of the proto under PROTO_ROOT. */
export const DEVICE_PLUGIN_PROTO = 'k8s/deviceplugin/v1beta1/deviceplugin.proto';
/** The API version a plugin sends in RegisterRequest.version. */
export const DEVICE_PLUGIN_API_VERSION = 'v1beta1';
/** The only two health values kubelet understands. */
export const HEALTHY = 'Healthy';
export const UNHEALTHY = 'Unhealthy';
/** Kubelet's default plugin directory and the name of its registration socket in it. */
export const DEFAULT_PLUGIN_DIR = '/var/lib/kubelet/device-plugins';
export const KUBELET_SOCKET = 'kubelet.sock';

/** v1beta1: Registration (served by kubelet) and DevicePlugin (served by plugins). */
export function loadDevicePluginV1beta1(): ProtoGrpcType['v1beta1'] {
  return loadProto<ProtoGrpcType>(DEVICE_PLUGIN_PROTO).v1beta1;
}

export type { AllocateRequest, AllocateRequest__Output } from './generated/v1beta1/AllocateRequest';
export type {
  AllocateResponse,
  AllocateResponse__Output,
} from './generated/v1beta1/AllocateResponse';
export type { CDIDevice, CDIDevice__Output } from './generated/v1beta1/CDIDevice';
export type {
  ContainerAllocateRequest,
  ContainerAllocateRequest__Output,
} from './generated/v1beta1/ContainerAllocateRequest';
export type {
  ContainerAllocateResponse,
  ContainerAllocateResponse__Output,
} from './generated/v1beta1/ContainerAllocateResponse';
export type {
  ContainerPreferredAllocationRequest,
  ContainerPreferredAllocationRequest__Output,
} from './generated/v1beta1/ContainerPreferredAllocationRequest';
export type {
  ContainerPreferredAllocationResponse,
  ContainerPreferredAllocationResponse__Output,
} from './generated/v1beta1/ContainerPreferredAllocationResponse';
export type { Device, Device__Output } from './generated/v1beta1/Device';
export type {
  DevicePluginClient,
  DevicePluginDefinition,
  DevicePluginHandlers,
} from './generated/v1beta1/DevicePlugin';
export type {
  DevicePluginOptions,
  DevicePluginOptions__Output,
} from './generated/v1beta1/DevicePluginOptions';
export type { DeviceSpec, DeviceSpec__Output } from './generated/v1beta1/DeviceSpec';
export type { Empty, Empty__Output } from './generated/v1beta1/Empty';
export type {
  ListAndWatchResponse,
  ListAndWatchResponse__Output,
} from './generated/v1beta1/ListAndWatchResponse';
export type { Mount, Mount__Output } from './generated/v1beta1/Mount';
export type { NUMANode, NUMANode__Output } from './generated/v1beta1/NUMANode';
export type {
  PreStartContainerRequest,
  PreStartContainerRequest__Output,
} from './generated/v1beta1/PreStartContainerRequest';
export type {
  PreStartContainerResponse,
  PreStartContainerResponse__Output,
} from './generated/v1beta1/PreStartContainerResponse';
export type {
  PreferredAllocationRequest,
  PreferredAllocationRequest__Output,
} from './generated/v1beta1/PreferredAllocationRequest';
export type {
  PreferredAllocationResponse,
  PreferredAllocationResponse__Output,
} from './generated/v1beta1/PreferredAllocationResponse';
export type { RegisterRequest, RegisterRequest__Output } from './generated/v1beta1/RegisterRequest';
export type {
  RegistrationClient,
  RegistrationDefinition,
  RegistrationHandlers,
} from './generated/v1beta1/Registration';
export type { TopologyInfo, TopologyInfo__Output } from './generated/v1beta1/TopologyInfo';
