import type { ProtoGrpcType } from './generated/chain';
import { loadProto } from './loader';

/** flowline.chain.v1: the ChainService and its messages. */
export function loadChainV1(): ProtoGrpcType['flowline']['chain']['v1'] {
  return loadProto<ProtoGrpcType>('flowline/chain/v1/chain.proto').flowline.chain.v1;
}

export type { Chain, Chain__Output } from './generated/flowline/chain/v1/Chain';
export type { ChainEvent, ChainEvent__Output } from './generated/flowline/chain/v1/ChainEvent';
export type {
  ChainServiceClient,
  ChainServiceHandlers,
} from './generated/flowline/chain/v1/ChainService';
export type { ChainSpec, ChainSpec__Output } from './generated/flowline/chain/v1/ChainSpec';
export type { ChainStatus } from './generated/flowline/chain/v1/ChainStatus';
export type { Classifier, Classifier__Output } from './generated/flowline/chain/v1/Classifier';
export type { Hop, Hop__Output } from './generated/flowline/chain/v1/Hop';
export type { HopConfig, HopConfig__Output } from './generated/flowline/chain/v1/HopConfig';
export type { HopStatus } from './generated/flowline/chain/v1/HopStatus';
export type {
  TunnelCrossing,
  TunnelCrossing__Output,
} from './generated/flowline/chain/v1/TunnelCrossing';
