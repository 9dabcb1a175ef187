/** Policies for the qos packet tests: the firewall classifies by port, the qos service shapes wan0. */
import { type Policy, parsePolicyText } from '@moat/policy';

/** Ports the iperf3 servers listen on, and the class each one's traffic is put into. */
export const PORTS = { capped: 5201, gold: 5202, silver: 5203, unclassified: 5204 } as const;

/**
 * `qos` is the policy's qos section (YAML); the rules put tcp/5201 into `capped`, 5202 into `gold` and
 * 5203 into `silver` when those classes exist, and let 5204 through unclassified.
 */
export function qosPolicy(qos: string, classes: readonly string[]): Policy {
  const rule = (name: keyof typeof PORTS) =>
    `  - { name: to-${name}, fromZones: lan, toZones: wan, source: any, destination: any, service: p-${name}, action: permit${
      classes.includes(name) ? `, qosClass: ${name}` : ''
    } }`;
  const text = `
apiVersion: moat/v1
kind: Policy
metadata: { name: qos-test }
zones:
  lan: { interfaces: [lan0] }
  wan: { interfaces: [wan0, wan9] }
objects:
  services:
${Object.entries(PORTS)
  .map(([name, port]) => `    p-${name}: { protocol: tcp, ports: ${port} }`)
  .join('\n')}
securityRules:
${(Object.keys(PORTS) as (keyof typeof PORTS)[]).map(rule).join('\n')}
nat:
  source:
    - { name: masquerade, fromZones: lan, egressInterface: wan0, translation: masquerade }
${qos}
`;
  const parsed = parsePolicyText(text, 'qos-test.yaml');
  if (!parsed.ok) throw new Error(`test policy invalid: ${JSON.stringify(parsed.violations)}`);
  return parsed.policy;
}

/** wan0 shaped to 30 Mbit/s egress: capped (ceil 10), gold and silver (2:1 rates), bulk as default. */
export const EGRESS_POLICY = qosPolicy(
  `qos:
  interfaces:
    wan0: { egressRate: 30mbit, defaultClass: bulk }
  classes:
    capped: { rate: 5mbit, ceil: 10mbit, priority: 2 }
    gold: { rate: 16mbit, priority: 3 }
    silver: { rate: 8mbit, priority: 3 }
    bulk: { rate: 1mbit, ceil: 4mbit, priority: 6 }`,
  ['capped', 'gold', 'silver'],
);

/** wan0 shaped 100 Mbit/s egress and 12 Mbit/s ingress (through an IFB). */
export const INGRESS_POLICY = qosPolicy(
  `qos:
  interfaces:
    wan0: { egressRate: 100mbit, ingressRate: 12mbit, defaultClass: bulk }
  classes:
    capped: { rate: 5mbit, ceil: 10mbit, priority: 2 }
    bulk: { rate: 2mbit, priority: 6 }`,
  ['capped'],
);

/** A qos section naming wan9, which the gateway namespace does not have. */
export const MISSING_INTERFACE_POLICY = qosPolicy(
  `qos:
  interfaces:
    wan9: { egressRate: 50mbit, defaultClass: bulk }
  classes:
    bulk: { rate: 2mbit }`,
  [],
);

/** No qos section at all. */
export const NO_QOS_POLICY = qosPolicy('', []);
