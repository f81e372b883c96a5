#!/usr/bin/env node
// An IPAM plugin for the unit tests, speaking the exec protocol (1.0.0) as host-local does:
// one lease file per attachment in ipam.store, CNI_ARGS with keys it does not know refused
// unless IgnoreUnknown is set (host-local's types.LoadArgs), DEL idempotent. Every call is
// appended to ipam.callLog (JSON lines) so a test sees what the flowline plugin passed on.
// ipam.addFails: "after-reserve" reserves the lease, then fails (code 11); "bad-result" reserves
// it and prints a result the caller cannot parse. ipam.addDelayMs holds ADD that long.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const stdin = fs.readFileSync(0, 'utf8');
const conf = stdin.trim() ? JSON.parse(stdin) : {};
const ipam = conf.ipam || {};
const command = process.env.CNI_COMMAND;
const log = (entry) => {
  if (ipam.callLog) fs.appendFileSync(ipam.callLog, JSON.stringify(entry) + '\n');
};
const out = (obj, code = 0) => {
  process.stdout.write(JSON.stringify(obj));
  process.exit(code);
};
const fail = (code, msg) => out({ cniVersion: '1.0.0', code, msg }, 1);

if (command === 'VERSION') out({ cniVersion: '1.0.0', supportedVersions: ['0.4.0', '1.0.0'] });
const id = `${process.env.CNI_CONTAINERID}:${process.env.CNI_IFNAME}`;
const args = process.env.CNI_ARGS;
log({ command, id, args: args ?? null, phase: 'start' });

const known = ['IgnoreUnknown', 'IP', 'K8S_POD_NAMESPACE', 'K8S_POD_NAME'];
known.push('K8S_POD_INFRA_CONTAINER_ID', 'K8S_POD_UID');
const pairs = (args || '').split(';').filter((p) => p !== '');
const ignoreUnknown = pairs.some((p) => /^IgnoreUnknown=(1|true)$/i.test(p));
const unknown = pairs.map((p) => p.split('=')[0]).filter((k) => !known.includes(k));
if (unknown.length > 0 && !ignoreUnknown) fail(7, `ARGS: unknown args ${JSON.stringify(unknown)}`);

const lease = path.join(ipam.store, id);
const finish = () => {
  log({ command, id, phase: 'end' });
  if (command === 'DEL') {
    fs.rmSync(lease, { force: true });
    process.exit(0);
  }
  if (command !== 'ADD') fail(4, `unsupported command ${command}`);
  fs.mkdirSync(ipam.store, { recursive: true });
  if (fs.existsSync(lease)) fail(11, `${id} already has a lease`);
  fs.writeFileSync(lease, '10.9.0.2/24');
  if (ipam.addFails === 'after-reserve') fail(11, 'reserved, then failed');
  if (ipam.addFails === 'bad-result') out({ cniVersion: '1.0.0', ips: [{ gateway: 'x' }] });
  out({ cniVersion: '1.0.0', ips: [{ address: '10.9.0.2/24' }], routes: [], dns: {} });
};
if (command === 'ADD' && ipam.addDelayMs) setTimeout(finish, ipam.addDelayMs);
else finish();
