/** flowline.ipsec.v1.IpsecGateway over the store. No reply carries key material. */
import * as grpc from '@grpc/grpc-js';
import { formatAddress } from '@flowline/packet';
import type { GrpcServiceRegistration } from '@flowline/nf-runtime';
import { ipsecV1, replyFrom, streamEvery } from '@flowline/proto';
import { IpsecConfigError, IpsecExistsError, IpsecInUseError, IpsecNotFoundError } from './errors';
import type { PolicySpec } from './policy';
import { ALGORITHMS, directionFromProto, directionToProto } from './sa';
import type { IpsecStore, SaRecord } from './store';

function toStatus(err: unknown): Partial<grpc.StatusObject> {
  const status = (code: grpc.status, details: string) => ({
    code,
    details,
    metadata: new grpc.Metadata(),
  });
  if (err instanceof IpsecConfigError) return status(grpc.status.INVALID_ARGUMENT, err.message);
  if (err instanceof IpsecNotFoundError) return status(grpc.status.NOT_FOUND, err.message);
  if (err instanceof IpsecExistsError) return status(grpc.status.ALREADY_EXISTS, err.message);
  if (err instanceof IpsecInUseError) return status(grpc.status.FAILED_PRECONDITION, err.message);
  // The data path refused it: nothing changed.
  return status(grpc.status.INTERNAL, `not applied, nothing changed: ${(err as Error).message}`);
}

const text = (a: { family: 4 | 6; bytes: Uint8Array }) => formatAddress(a.bytes, a.family);

export function saMessage(rec: SaRecord): ipsecV1.SecurityAssociation {
  const l = rec.lifetime;
  return {
    spi: rec.spi,
    direction: directionToProto(rec.direction),
    algorithm: ALGORITHMS[rec.algorithm].proto as ipsecV1.Algorithm,
    // only a reference is ever shown; inline keys are not shown at all
    ...(rec.keyRefs.encryption !== undefined
      ? { encryptionKey: { keyRef: rec.keyRefs.encryption } }
      : {}),
    ...(rec.keyRefs.integrity !== undefined
      ? { integrityKey: { keyRef: rec.keyRefs.integrity } }
      : {}),
    tunnelSrc: text(rec.tunnelSrc),
    tunnelDst: text(rec.tunnelDst),
    innerIpVersion: rec.innerFamily,
    esn: rec.esn,
    replayWindow: rec.replayWindow,
    replayOff: rec.direction === 'inbound' && rec.replayWindow === 0,
    lifetime: {
      softPackets: String(l.softPackets),
      hardPackets: String(l.hardPackets),
      softBytes: String(l.softBytes),
      hardBytes: String(l.hardBytes),
      softSeconds: String(l.softSeconds),
      hardSeconds: String(l.hardSeconds),
    },
  };
}

export function sasMessage(store: IpsecStore): ipsecV1.ListSasResponse {
  return {
    generation: String(store.generation),
    sas: store.listSas().map((rec): ipsecV1.SaStatus => {
      const c = store.saCounters(rec);
      return {
        sa: saMessage(rec),
        counters: c
          ? {
              packets: String(c.packets),
              bytes: String(c.bytes),
              authFailures: String(c.authFailures),
              replays: String(c.replays),
              lifetimeDrops: String(c.lifetimeDrops),
              trailerErrors: String(c.trailerErrors),
              errors: String(c.errors),
              sequence: String(c.sequence),
            }
          : {},
        softExpired: rec.softExpired || Boolean(c?.softExpired),
        hardExpired: rec.hardExpired || Boolean(c?.hardExpired),
        ageSeconds: String(store.ageSeconds(rec)),
        cryptoDevice: c?.cryptoDevice ?? '',
        cpuCrypto: c?.cpuCrypto ?? false,
      };
    }),
  };
}

function policyMessage(p: PolicySpec): ipsecV1.Policy {
  const m = p.match;
  const ports = (r?: [number, number]) => (r ? { first: r[0], last: r[1] } : null);
  return {
    id: p.id,
    priority: p.priority,
    direction: directionToProto(p.direction),
    match: {
      ipVersion: m.families.length === 1 ? (m.families[0] ?? 0) : 0,
      srcPrefix: m.src?.text ?? '',
      dstPrefix: m.dst?.text ?? '',
      protocol: m.protocol === undefined ? '' : String(m.protocol),
      srcPorts: ports(m.srcPorts),
      dstPorts: ports(m.dstPorts),
    },
    action: p.action.toUpperCase() as ipsecV1.PolicyAction,
    saSpi: p.saSpi ?? 0,
  };
}

/** flowline.ipsec.v1.IpsecGateway over the store. */
export function ipsecService(store: IpsecStore): GrpcServiceRegistration {
  const change = (generation: bigint) => ({ generation: String(generation) });
  const handlers: ipsecV1.IpsecGatewayHandlers = {
    AddSa: (call, cb) =>
      replyFrom(async () => change(await store.addSa(call.request.sa)), cb, toStatus),
    DeleteSa: (call, cb) =>
      replyFrom(
        async () =>
          change(
            await store.deleteSa(
              directionFromProto(call.request.direction, 'direction'),
              Number(call.request.spi),
            ),
          ),
        cb,
        toStatus,
      ),
    ListSas: (_call, cb) => cb(null, sasMessage(store)),
    AddPolicy: (call, cb) =>
      replyFrom(async () => change(await store.addPolicy(call.request.policy)), cb, toStatus),
    UpdatePolicy: (call, cb) =>
      replyFrom(async () => change(await store.updatePolicy(call.request.policy)), cb, toStatus),
    DeletePolicy: (call, cb) =>
      replyFrom(async () => change(await store.deletePolicy(call.request.id)), cb, toStatus),
    ListPolicies: (_call, cb) => {
      const packets = {
        inbound: store.policyPackets('inbound'),
        outbound: store.policyPackets('outbound'),
      };
      cb(null, {
        generation: String(store.generation),
        policies: store.listPolicies().map((p) => ({
          policy: policyMessage(p),
          packets: String(packets[p.direction].get(p.id) ?? 0n),
        })),
      });
    },
    WatchSas: (call) => streamEvery(call, call.request.intervalMs, () => sasMessage(store)),
  };
  return {
    name: 'flowline.ipsec.v1.IpsecGateway',
    definition: ipsecV1.loadIpsecV1().IpsecGateway.service,
    implementation: handlers as unknown as grpc.UntypedServiceImplementation,
    // Every method, reads included, only to the chain controller and the operator: an SA's
    // tunnel addresses, key names and counters are not for other NFs.
    readOnlyMethods: [],
  };
}
