import type { TrafficPlan } from './plan';

/** What the sink counted for one planned flow. */
export interface FlowOutcome {
  name: string;
  sent: number;
  received: number;
}

export interface Verdict {
  ok: boolean;
  /** Each broken expectation, naming the flow and the counts. */
  problems: string[];
  sent: number;
  received: number;
  firewallDenied: number;
}

/**
 * The fates of the local e2e: every packet of a delivered flow arrives, no packet of a dropped
 * flow arrives, and the packets that did not arrive are exactly the ones the firewall denied
 * (so none was lost on a link, in OVS or in the router). `firewallDenied` is the increase of
 * the firewall's deny counters (DENY rules and the default action) over the run.
 */
export function judge(plan: TrafficPlan, outcomes: FlowOutcome[], firewallDenied: number): Verdict {
  const problems: string[] = [];
  const byName = new Map(outcomes.map((o) => [o.name, o]));
  let sent = 0;
  let received = 0;
  let droppedSent = 0;
  for (const flow of plan.flows) {
    const o = byName.get(flow.name);
    if (!o) {
      problems.push(`${flow.name}: no result from the traffic generator`);
      continue;
    }
    byName.delete(flow.name);
    sent += o.sent;
    received += o.received;
    if (o.sent !== flow.count)
      problems.push(`${flow.name}: sent ${o.sent} of ${flow.count} packets`);
    if (flow.expect === 'delivered' && o.received !== o.sent)
      problems.push(
        `${flow.name}: permitted, but ${o.sent - o.received} of ${o.sent} packets did not arrive`,
      );
    if (flow.expect === 'dropped') {
      droppedSent += o.sent;
      if (o.received !== 0)
        problems.push(`${flow.name}: denied, but ${o.received} of ${o.sent} packets arrived`);
    }
  }
  for (const extra of byName.keys())
    problems.push(`${extra}: a result for a flow the plan does not have`);
  if (firewallDenied !== droppedSent)
    problems.push(
      `firewall denied ${firewallDenied} packets; the denied flows sent ${droppedSent}`,
    );
  if (sent !== received + firewallDenied)
    problems.push(
      `lost: ${sent} sent, ${received} received, ${firewallDenied} denied by the firewall; ${sent - received - firewallDenied} unaccounted for`,
    );
  return { ok: problems.length === 0, problems, sent, received, firewallDenied };
}
