import { join } from 'node:path';
import { CniCode, CniError } from './errors';
import { invoke } from './invoke';
import { LATEST } from './versions';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function main(): Promise<void> {
  let stdin: string;
  try {
    stdin = await readStdin();
  } catch (err) {
    const e = new CniError(
      CniCode.IoFailure,
      `cannot read the network configuration from stdin: ${(err as Error).message}`,
    );
    process.stdout.write(JSON.stringify(e.toJSON(LATEST)), () => process.exit(1));
    return;
  }
  const { exitCode, stdout } = await invoke({ env: process.env, stdin });
  if (stdout === '') process.exit(exitCode);
  process.stdout.write(stdout, () => process.exit(exitCode));
}

/**
 * `flowline-cni daemon` is its own bundle beside this one (dist/flowline-cni-daemon.js, with
 * OpenTelemetry): one CNI exec must not parse it.
 */
function loadDaemon(): typeof import('./daemon-main') {
  return module.require(
    join(__dirname, 'flowline-cni-daemon.js'),
  ) as typeof import('./daemon-main');
}

// `flowline-cni daemon` serves the native executable's invocations; anything else is one CNI
// invocation by the exec protocol (runtimes pass no arguments).
if (require.main === module) {
  if (process.argv[2] === 'daemon')
    Promise.resolve()
      .then(() => loadDaemon().runDaemon(process.argv.slice(3)))
      .catch((err: unknown) => {
        process.stderr.write(`flowline-cni daemon: ${(err as Error).message}\n`);
        process.exit(1);
      });
  else void main();
}
