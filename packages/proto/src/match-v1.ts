/** flowline.match.v1: the 5-tuple match shared by firewall.v1 and chain.v1 (messages only). */
export type { Match, Match__Output } from './generated/flowline/match/v1/Match';
export type { PortRange, PortRange__Output } from './generated/flowline/match/v1/PortRange';
