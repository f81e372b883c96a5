/**
 * An NF's main gRPC port as a process of its own (grpc.health.v1 over mutual TLS, SERVING,
 * test/support/pki.ts startNfHealth), for beds that run the NF inside its pod's network
 * namespace: `node --import tsx nf-health-main.ts <address> <ca> <cert> <key>`. Prints
 * `serving <address>` once bound; SIGTERM stops it.
 */
import { startNfHealth } from './pki';

const [address, caFile, certFile, keyFile] = process.argv.slice(2);
if (!address || !caFile || !certFile || !keyFile) {
  console.error('usage: nf-health-main.ts <address> <ca> <cert> <key>');
  process.exit(2);
}
startNfHealth(address, { caFile, certFile, keyFile }).then(
  (served) => {
    console.log(`serving ${served.address}`);
    process.once('SIGTERM', () => served.server.forceShutdown());
  },
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
