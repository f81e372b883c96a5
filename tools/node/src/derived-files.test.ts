import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nfAddressesFile, writeNfAddresses } from './derived-files';
import type { PodRecord } from './state';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'flnode-derived-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const pod = (key: string, grpcAddress: string) => ({ key, grpcAddress }) as PodRecord;

describe("the chain controller's NF addresses", () => {
  it("maps each pod's key to its gRPC address, readable by all, without a previous copy", () => {
    writeNfAddresses(dir, {
      'default/fw': pod('default/fw', 'unix:///s/fw.sock'),
      'nfs/rt': pod('nfs/rt', 'unix:///s/rt.sock'),
    });
    const file = nfAddressesFile(dir);
    expect(file).toBe(join(dir, 'nf-addresses.json'));
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({
      'default/fw': 'unix:///s/fw.sock',
      'nfs/rt': 'unix:///s/rt.sock',
    });
    expect(statSync(file).mode & 0o777).toBe(0o644);
    writeNfAddresses(dir, {});
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({});
    expect(existsSync(`${file}.prev`)).toBe(false);
  });
});
