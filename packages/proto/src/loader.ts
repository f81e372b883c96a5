import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ProtoGrpcType as HealthProtoGrpcType } from './generated/health';
import type { ProtoGrpcType as NfProtoGrpcType } from './generated/nf';

/** Folder holding every .proto of the project (shipped with the package). */
export const PROTO_ROOT = join(__dirname, '..', 'proto');

/**
 * Loader options. scripts/generate.mjs passes the same ones to the type generator, so the
 * generated types describe exactly the objects grpc-js hands out: camelCase fields, 64-bit
 * integers as decimal strings, enums as their names, defaults filled in, oneof names set.
 */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

export class ProtoNotFoundError extends Error {
  constructor(readonly file: string) {
    super(`proto file ${file} not found under ${PROTO_ROOT}`);
    this.name = 'ProtoNotFoundError';
  }
}

const loaded = new Map<string, unknown>();

/**
 * Loads one .proto (path relative to PROTO_ROOT) as a grpc-js package object. T is the
 * generated ProtoGrpcType of that file. Loads are cached: every caller gets the same
 * constructors, so service definitions compare equal across a process.
 */
export function loadProto<T>(file: string): T {
  const cached = loaded.get(file);
  if (cached) return cached as T;
  if (!existsSync(join(PROTO_ROOT, file))) throw new ProtoNotFoundError(file);
  const definition = protoLoader.loadSync(file, LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(definition) as unknown as T;
  loaded.set(file, pkg);
  return pkg;
}

/** flowline.nf.v1: NetworkFunction service and its messages. */
export function loadNetworkFunctionV1(): NfProtoGrpcType['flowline']['nf']['v1'] {
  return loadProto<NfProtoGrpcType>('flowline/nf/v1/nf.proto').flowline.nf.v1;
}

/** grpc.health.v1: the standard Health service. */
export function loadHealthV1(): HealthProtoGrpcType['grpc']['health']['v1'] {
  return loadProto<HealthProtoGrpcType>('grpc/health/v1/health.proto').grpc.health.v1;
}
