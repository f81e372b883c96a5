/**
 * OVSDB's JSON notation for values (RFC 7047 section 5.1): a set is ["set", [...]] unless it
 * has exactly one element, a map is ["map", [[k, v], ...]], a UUID is ["uuid", "..."] and a
 * reference to a row inserted earlier in the same transaction is ["named-uuid", "name"].
 */
export type OvsdbAtom = string | number | boolean | ['uuid', string] | ['named-uuid', string];
export type OvsdbValue = OvsdbAtom | ['set', OvsdbAtom[]] | ['map', [OvsdbAtom, OvsdbAtom][]];
export type Row = Record<string, unknown>;

export const uuid = (id: string): ['uuid', string] => ['uuid', id];
export const namedUuid = (name: string): ['named-uuid', string] => ['named-uuid', name];
export const set = (items: readonly OvsdbAtom[]): ['set', OvsdbAtom[]] => ['set', [...items]];
export const map = (
  entries: Readonly<Record<string, string | number | boolean>>,
): ['map', [OvsdbAtom, OvsdbAtom][]] => [
  'map',
  Object.entries(entries).map(([k, v]) => [k, typeof v === 'string' ? v : String(v)]),
];

function isTagged(value: unknown, tag: string): value is [string, unknown] {
  return Array.isArray(value) && value.length === 2 && value[0] === tag;
}

/** A set column's value as an array (a single element comes unwrapped; UUIDs as strings). */
export function decodeSet(value: unknown): unknown[] {
  if (isTagged(value, 'set')) return (value[1] as unknown[]).map(decodeAtom);
  if (value === undefined) return [];
  return [decodeAtom(value)];
}

/** A map column's value as a plain object of strings. */
export function decodeMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isTagged(value, 'map')) return out;
  for (const [k, v] of value[1] as [unknown, unknown][])
    out[String(decodeAtom(k))] = String(decodeAtom(v));
  return out;
}

/** An atom: UUIDs become their string; others stay as they are. */
export function decodeAtom(value: unknown): unknown {
  if (isTagged(value, 'uuid') || isTagged(value, 'named-uuid')) return value[1];
  return value;
}

/** An optional scalar column ("min": 0, "max": 1) is an empty set when unset. */
export function decodeOptional<T>(value: unknown): T | undefined {
  const items = decodeSet(value);
  return items.length === 0 ? undefined : (items[0] as T);
}
