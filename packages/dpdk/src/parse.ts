import { native, type NativeParsed } from './native';

/** Runs the fast path's C packet parser on a frame (for tests and diagnostics). */
export function parsePacket(frame: Buffer): NativeParsed {
  return native().parsePacket(frame);
}
