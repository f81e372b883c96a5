import type { firewallV1 } from '@flowline/proto';
import { readFileSync } from 'node:fs';

export type Fate = 'delivered' | 'dropped';

/** One generated flow and the fate every one of its packets must meet. */
export interface PlannedFlow {
  name: string;
  protocol: 'udp' | 'tcp';
  srcIp: string;
  dstIp: string;
  srcPort: number;
  dstPort: number;
  /** Packets to send (count-limited, so "nothing lost" is exact). */
  count: number;
  ratePps: number;
  expect: Fate;
}

export interface PlannedRoute {
  prefix: string;
  interface: string;
  nextHop?: string;
}

/** tools/kind/e2e-plan.json: what the NFs are told and which fate each flow must meet. */
export interface TrafficPlan {
  description: string;
  firewall: { defaultAction: 'PERMIT' | 'DENY'; rules: firewallV1.Rule[] };
  routes: PlannedRoute[];
  flows: PlannedFlow[];
}

/** A plan that does not validate: names the field (flows[2].count) and what is wrong. */
export class PlanError extends Error {
  constructor(
    readonly file: string,
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${file}: ${field}: ${reason}`);
    this.name = 'PlanError';
  }
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

function ipv4(v: unknown): boolean {
  const m = typeof v === 'string' ? IPV4.exec(v) : null;
  return m !== null && m.slice(1).every((o) => Number(o) <= 255);
}

function int(v: unknown, min: number, max: number): boolean {
  return Number.isInteger(v) && (v as number) >= min && (v as number) <= max;
}

/** Validates a parsed plan, naming the first bad field. */
export function parsePlan(value: unknown, file = 'plan'): TrafficPlan {
  const fail = (field: string, reason: string): never => {
    throw new PlanError(file, field, reason);
  };
  if (!isObject(value)) return fail('(top level)', 'must be a JSON object');
  const fw = value.firewall;
  if (!isObject(fw)) return fail('firewall', 'must be an object with defaultAction and rules');
  if (fw.defaultAction !== 'PERMIT' && fw.defaultAction !== 'DENY')
    fail('firewall.defaultAction', 'must be PERMIT or DENY');
  if (!Array.isArray(fw.rules)) return fail('firewall.rules', 'must be an array');
  // The rules themselves are validated by the firewall (ReplaceRules answers INVALID_ARGUMENT
  // naming the field); plan.test.ts checks the shipped plan with the firewall's validator.
  (fw.rules as unknown[]).forEach((r, i) => {
    if (!isObject(r) || typeof r.id !== 'string') fail(`firewall.rules[${i}].id`, 'is required');
    if ((r as Json).action !== 'PERMIT' && (r as Json).action !== 'DENY')
      fail(`firewall.rules[${i}].action`, 'must be PERMIT or DENY');
  });
  const routes = Array.isArray(value.routes) ? value.routes : fail('routes', 'must be an array');
  routes.forEach((r: unknown, i) => {
    if (!isObject(r) || typeof r.prefix !== 'string' || !/^[0-9a-fA-F.:]+\/\d{1,3}$/.test(r.prefix))
      fail(`routes[${i}].prefix`, 'must be a prefix such as 10.99.0.0/16');
    if (!IFNAME.test(String((r as Json).interface)))
      fail(`routes[${i}].interface`, 'must be an interface name');
  });
  const flows = Array.isArray(value.flows) ? value.flows : fail('flows', 'must be an array');
  const names = new Set<string>();
  flows.forEach((f: unknown, i) => {
    const at = `flows[${i}]`;
    if (!isObject(f)) return fail(at, 'must be an object');
    if (typeof f.name !== 'string' || !NAME.test(f.name))
      fail(`${at}.name`, 'must be a lower-case name');
    if (names.has(f.name as string)) fail(`${at}.name`, `"${String(f.name)}" is used twice`);
    names.add(f.name as string);
    if (f.protocol !== 'udp' && f.protocol !== 'tcp') fail(`${at}.protocol`, 'must be udp or tcp');
    if (!ipv4(f.srcIp)) fail(`${at}.srcIp`, 'must be an IPv4 address');
    if (!ipv4(f.dstIp)) fail(`${at}.dstIp`, 'must be an IPv4 address');
    if (!int(f.srcPort, 0, 65535)) fail(`${at}.srcPort`, 'must be 0-65535');
    if (!int(f.dstPort, 0, 65535)) fail(`${at}.dstPort`, 'must be 0-65535');
    if (!int(f.count, 1, 100_000_000)) fail(`${at}.count`, 'must be a positive packet count');
    if (!int(f.ratePps, 1, 100_000_000)) fail(`${at}.ratePps`, 'must be a positive rate');
    if (f.expect !== 'delivered' && f.expect !== 'dropped')
      fail(`${at}.expect`, 'must be delivered or dropped');
  });
  for (const fate of ['delivered', 'dropped'] as const) {
    if (!flows.some((f: Json) => f.expect === fate))
      fail('flows', `has no ${fate} flow: the run must show both fates`);
  }
  return {
    description: typeof value.description === 'string' ? value.description : '',
    firewall: {
      defaultAction: fw.defaultAction as 'PERMIT' | 'DENY',
      rules: fw.rules as firewallV1.Rule[],
    },
    routes: routes as PlannedRoute[],
    flows: flows as PlannedFlow[],
  };
}

export function loadPlan(file: string): TrafficPlan {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new PlanError(file, '(file)', `cannot read it as JSON: ${(err as Error).message}`);
  }
  return parsePlan(json, file);
}
