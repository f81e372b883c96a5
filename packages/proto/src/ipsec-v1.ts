import type { ProtoGrpcType } from './generated/ipsec';
import { loadProto } from './loader';

/** flowline.ipsec.v1: the IPsec gateway's SAs and policies. */
export function loadIpsecV1(): ProtoGrpcType['flowline']['ipsec']['v1'] {
  return loadProto<ProtoGrpcType>('flowline/ipsec/v1/ipsec.proto').flowline.ipsec.v1;
}

export type { Algorithm } from './generated/flowline/ipsec/v1/Algorithm';
export type { Direction } from './generated/flowline/ipsec/v1/Direction';
export type {
  IpsecGatewayClient,
  IpsecGatewayHandlers,
} from './generated/flowline/ipsec/v1/IpsecGateway';
export type { KeySource, KeySource__Output } from './generated/flowline/ipsec/v1/KeySource';
export type { Lifetime, Lifetime__Output } from './generated/flowline/ipsec/v1/Lifetime';
export type { Policy, Policy__Output } from './generated/flowline/ipsec/v1/Policy';
export type { PolicyAction } from './generated/flowline/ipsec/v1/PolicyAction';
export type { SaCounters } from './generated/flowline/ipsec/v1/SaCounters';
export type { SaStatus } from './generated/flowline/ipsec/v1/SaStatus';
export type {
  SecurityAssociation,
  SecurityAssociation__Output,
} from './generated/flowline/ipsec/v1/SecurityAssociation';
export type { ListSasResponse } from './generated/flowline/ipsec/v1/ListSasResponse';
