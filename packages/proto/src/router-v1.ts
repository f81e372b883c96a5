import type { ProtoGrpcType } from './generated/router';
import { loadProto } from './loader';

/** flowline.router.v1: the Router service and its messages. */
export function loadRouterV1(): ProtoGrpcType['flowline']['router']['v1'] {
  return loadProto<ProtoGrpcType>('flowline/router/v1/router.proto').flowline.router.v1;
}

export type { Counters, Counters__Output } from './generated/flowline/router/v1/Counters';
export type { Neighbor, Neighbor__Output } from './generated/flowline/router/v1/Neighbor';
export type { Route, Route__Output } from './generated/flowline/router/v1/Route';
export type { RouterClient, RouterHandlers } from './generated/flowline/router/v1/Router';
export type { RouteTableVersion } from './generated/flowline/router/v1/RouteTableVersion';
