/** Policies and list files for the firewall's packet tests (in the namespaces of topology.ts). */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Policy, parsePolicyText } from '@moat/policy';
import { ADDR } from './topology.js';

/** A blocklist file of `count` addresses in 100.64.0.0/10 (none of the test's), plus `extra`. */
export function writeBlocklist(dir: string, count: number, extra: string[]): string {
  const lines = ['# generated for the firewall tests'];
  for (let i = 0; i < count; i++) {
    const n = 0x64400000 + i * 3; // every third address, so entries do not merge into prefixes
    lines.push([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.'));
  }
  lines.push(...extra);
  const file = join(dir, 'blocklist.txt');
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

/** The packet tests' policy (as YAML text and validated): see firewall.test.ts for what each rule is for. */
export function testPolicyText(
  blocklist: string,
  description = 'firewall packet tests',
  /** Extra security rules (YAML list items), placed first. */
  extraRules = '',
): string {
  const text = `
apiVersion: moat/v1
kind: Policy
metadata: { name: fw-test, description: ${JSON.stringify(description)} }
zones:
  lan: { interfaces: [lan0], hostInboundServices: [ping] }
  wan: { interfaces: [wan0] }
objects:
  addresses:
    lan-net: 10.71.1.0/24
    server: ${ADDR.client}
    public: ${ADDR.gwWan}
    wan-server: ${ADDR.server}
  addressSets:
    blocklist: { file: ${blocklist} }
  services:
    web-8080: { protocol: tcp, ports: 8080 }
    app: { protocol: tcp, ports: 8000 }
    app-public: { protocol: tcp, ports: 8443 }
    tcp-9090: { protocol: tcp, ports: 9090 }
    udp-5300: { protocol: udp, ports: 5300 }
    udp-5301: { protocol: udp, ports: 5301 }
securityRules:
${extraRules}
  - { name: block-listed, fromZones: lan, toZones: wan, source: any, destination: blocklist, service: any, action: deny, log: { sessionInit: true }, counter: true }
  - { name: lan-web, fromZones: lan, toZones: wan, source: lan-net, destination: any, service: web-8080, action: permit, counter: true }
  - { name: published-app, fromZones: [wan, lan], toZones: lan, source: any, destination: server, service: app, action: permit, counter: true }
nat:
  source:
    - { name: masquerade, fromZones: lan, egressInterface: wan0, translation: masquerade }
  destination:
    - { name: app, fromZones: wan, destinationAddress: public, service: app-public, translateTo: { address: server, port: 8000 }, hairpin: true }
`;
  return text;
}

export function testPolicy(blocklist: string, description?: string, extraRules?: string): Policy {
  const parsed = parsePolicyText(testPolicyText(blocklist, description, extraRules), 'fw-test.yaml');
  if (!parsed.ok) throw new Error(`test policy invalid: ${JSON.stringify(parsed.violations)}`);
  return parsed.policy;
}
