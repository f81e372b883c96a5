// Generated types of the standard grpc.health.v1, under short names.
export type { HealthClient, HealthHandlers } from './generated/grpc/health/v1/Health';
export type { HealthCheckRequest } from './generated/grpc/health/v1/HealthCheckRequest';
export type {
  HealthCheckResponse,
  HealthCheckResponse__Output,
} from './generated/grpc/health/v1/HealthCheckResponse';
