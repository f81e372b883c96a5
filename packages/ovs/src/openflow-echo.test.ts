import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { OpenFlowConnectionError, OpenFlowTimeoutError } from './errors';
import { OpenFlowEcho } from './openflow-echo';

const msg = (version: number, type: number, xid: number, body: number[] = []): Buffer => {
  const b = Buffer.alloc(8 + body.length);
  b.writeUInt8(version, 0);
  b.writeUInt8(type, 1);
  b.writeUInt16BE(b.length, 2);
  b.writeUInt32BE(xid, 4);
  Buffer.from(body).copy(b, 8);
  return b;
};

/**
 * A bridge's OpenFlow listener in miniature: HELLO at OpenFlow 1.3, echo replies unless `mute`,
 * and every message it got, as [version, type, xid]. A connection accepted while `silent` gets
 * nothing at all (not even HELLO); HELLO comes `helloDelayMs` after the connection.
 */
function fakeSwitch(dir: string) {
  const got: [number, number, number][] = [];
  const sockets = new Set<Socket>();
  const state = { mute: false, silent: false, helloDelayMs: 0, accepted: 0 };
  const path = join(dir, 'br.mgmt');
  const server: Server = createServer((s) => {
    state.accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    if (state.silent) return void s.resume();
    if (state.helloDelayMs) setTimeout(() => s.write(msg(0x04, 0, 1)), state.helloDelayMs);
    else s.write(msg(0x04, 0, 1));
    s.on('data', (d: Buffer) => {
      for (let at = 0; at + 8 <= d.length; at += d.readUInt16BE(at + 2)) {
        const m = d.subarray(at, at + d.readUInt16BE(at + 2));
        got.push([m[0]!, m[1]!, m.readUInt32BE(4)]);
        if (m[1] === 2 && !state.mute) s.write(msg(m[0]!, 3, m.readUInt32BE(4)));
      }
    });
  });
  return {
    got,
    state,
    sockets,
    path,
    listen: () => new Promise<void>((ok) => server.listen(path, ok)),
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}

describe('OpenFlowEcho', () => {
  const dirs: string[] = [];
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const setUp = async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flowline-ofecho-'));
    dirs.push(dir);
    const sw = fakeSwitch(dir);
    await sw.listen();
    const echo = new OpenFlowEcho({ kind: 'unix', path: sw.path });
    cleanups.push(
      () => echo.close(),
      () => {
        for (const s of sw.sockets) s.destroy();
        return sw.close();
      },
    );
    return { sw, echo };
  };

  it('says HELLO, then echoes at the version the switch speaks, on one kept connection', async () => {
    const { sw, echo } = await setUp();
    await echo.echo(1000);
    await echo.echo(1000);
    expect(sw.state.accepted).toBe(1);
    expect(sw.got.map(([v, t]) => [v, t])).toEqual([
      [0x05, 0], // HELLO offering OpenFlow 1.4
      [0x04, 2], // echo requests at 1.3, the switch's
      [0x04, 2],
    ]);
    expect(new Set(sw.got.slice(1).map(([, , xid]) => xid)).size).toBe(2);
  });

  it("answers the switch's own echo requests (its inactivity probe), with their xid", async () => {
    const { sw, echo } = await setUp();
    await echo.echo(1000);
    const [s] = [...sw.sockets];
    s!.write(msg(0x04, 2, 77, [1, 2, 3]));
    const start = Date.now();
    while (!sw.got.some(([, t, xid]) => t === 3 && xid === 77)) {
      if (Date.now() - start > 1000) throw new Error('no echo reply');
      await new Promise((r) => setTimeout(r, 5));
    }
  });

  it('fails at its deadline when the switch stops answering', async () => {
    const { sw, echo } = await setUp();
    await echo.echo(1000);
    sw.state.mute = true;
    const start = Date.now();
    await expect(echo.echo(80)).rejects.toBeInstanceOf(OpenFlowTimeoutError);
    expect(Date.now() - start).toBeLessThan(500);
  });

  it('fails at once when the connection closes (the switch died), and connects again at the next echo', async () => {
    const { sw, echo } = await setUp();
    await echo.echo(1000);
    sw.state.mute = true;
    const pending = echo.echo(5000);
    const start = Date.now();
    await new Promise((r) => setTimeout(r, 20));
    for (const s of sw.sockets) s.destroy();
    await expect(pending).rejects.toBeInstanceOf(OpenFlowConnectionError);
    expect(Date.now() - start).toBeLessThan(1000);
    sw.state.mute = false;
    await echo.echo(1000);
    expect(sw.state.accepted).toBe(2);
  });

  it('gives up a connection whose HELLO never comes at the deadline, and connects anew', async () => {
    const { sw, echo } = await setUp();
    sw.state.silent = true;
    await expect(echo.echo(100)).rejects.toBeInstanceOf(OpenFlowTimeoutError);
    // The silent connection is closed (not kept pending for the next echo to wait on) ...
    const start = Date.now();
    while (sw.sockets.size > 0) {
      if (Date.now() - start > 1000) throw new Error('the abandoned connection is still open');
      await new Promise((r) => setTimeout(r, 5));
    }
    // ... and the next echo makes a new one.
    sw.state.silent = false;
    await echo.echo(1000);
    expect(sw.state.accepted).toBe(2);
  });

  it('keeps a connection being made while another echo still waits for it', async () => {
    const { sw, echo } = await setUp();
    sw.state.helloDelayMs = 150;
    const short = echo.echo(30);
    const long = echo.echo(2000);
    await expect(short).rejects.toBeInstanceOf(OpenFlowTimeoutError);
    await long;
    expect(sw.state.accepted).toBe(1);
  });

  it('close() ends a connection being made', async () => {
    const { sw, echo } = await setUp();
    sw.state.silent = true;
    const pending = echo.echo(5000);
    while (sw.state.accepted === 0) await new Promise((r) => setTimeout(r, 5));
    echo.close();
    await expect(pending).rejects.toBeInstanceOf(OpenFlowConnectionError);
    const start = Date.now();
    while (sw.sockets.size > 0) {
      if (Date.now() - start > 1000) throw new Error('the connection being made is still open');
      await new Promise((r) => setTimeout(r, 5));
    }
  });

  it('fails when nothing listens, and after close()', async () => {
    const { sw, echo } = await setUp();
    for (const s of sw.sockets) s.destroy();
    await sw.close();
    await expect(echo.echo(500)).rejects.toThrow(/ENOENT|ECONNREFUSED/);
    echo.close();
    await expect(echo.echo(500)).rejects.toBeInstanceOf(OpenFlowConnectionError);
  });
});
