/**
 * The firewall with real packets: a policy rendered into nftables in a gateway namespace, then curl
 * from the client side and from the server side. Needs root, nft and curl; says so loudly otherwise.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parsePolicyText } from '@moat/policy';
import { type ManagedProcess, runCommand, startProcess, waitFor } from '@moat/testkit';
import { Firewall } from './firewall.js';
import { applyScript, listRuleset, NftError } from './nft.js';
import { ADDR, createTopology, NS, removeTopology } from './testing/topology.js';

const ECHO_SERVER = fileURLToPath(new URL('./testing/echo-server.js', import.meta.url));
const inGateway = { command: ['ip', 'netns', 'exec', NS.gw, 'nft'] };

async function skipReason(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'not root: needs network namespaces and nftables';
  for (const tool of ['nft', 'curl', 'ip']) {
    const found = await runCommand('sh', ['-c', `command -v ${tool}`]);
    if (found.code !== 0) return `${tool} is not installed (scripts/setup.sh installs it)`;
  }
  return undefined;
}
const reason = await skipReason();
if (reason) console.error(`\n!!!!!!!! SKIPPING FIREWALL PACKET TESTS: ${reason} !!!!!!!!\n`);

/** curl from a namespace: the response body, or `curl:<exit code>` when no response came. */
async function curlFrom(ns: string, url: string): Promise<string> {
  const r = await runCommand('ip', ['netns', 'exec', ns, 'curl', '-sS', '-m', '2', url], {
    timeoutMs: 10_000,
  });
  return r.code === 0 ? r.stdout.trim() : `curl:${r.code}`;
}

/** A blocklist file of `count` addresses in 100.64.0.0/10 (none of the test's), plus `extra`. */
function writeBlocklist(dir: string, count: number, extra: string[]): string {
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

function testPolicy(blocklist: string, description = 'firewall packet tests') {
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
  addressSets:
    blocklist: { file: ${blocklist} }
  services:
    web-8080: { protocol: tcp, ports: 8080 }
    app: { protocol: tcp, ports: 8000 }
    app-public: { protocol: tcp, ports: 8443 }
securityRules:
  - { name: block-listed, fromZones: lan, toZones: wan, source: any, destination: blocklist, service: any, action: deny, log: { sessionInit: true }, counter: true }
  - { name: lan-web, fromZones: lan, toZones: wan, source: lan-net, destination: any, service: web-8080, action: permit, counter: true }
  - { name: published-app, fromZones: [wan, lan], toZones: lan, source: any, destination: server, service: app, action: permit, counter: true }
nat:
  source:
    - { name: masquerade, fromZones: lan, egressInterface: wan0, translation: masquerade }
  destination:
    - { name: app, fromZones: wan, destinationAddress: public, service: app-public, translateTo: { address: server, port: 8000 }, hairpin: true }
`;
  const parsed = parsePolicyText(text, 'fw-test.yaml');
  if (!parsed.ok) throw new Error(`test policy invalid: ${JSON.stringify(parsed.violations)}`);
  return parsed.policy;
}

describe('firewall with real packets', { skip: reason }, () => {
  let dir: string;
  let blocklist: string;
  const servers: ManagedProcess[] = [];
  const firewall = new Firewall({ nft: inGateway });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'moat-fw-'));
    blocklist = writeBlocklist(dir, 100_000, [ADDR.listed]);
    await createTopology();
    for (const [ns, listen] of [
      [
        NS.wan,
        [`${ADDR.server}:8080`, `${ADDR.server}:9090`, `${ADDR.listed}:8080`, `${ADDR.unlisted}:8080`],
      ],
      [NS.lan, [`${ADDR.client}:8000`]],
    ] as const) {
      const server = startProcess(`echo-${ns}`, 'ip', [
        'netns',
        'exec',
        ns,
        process.execPath,
        ECHO_SERVER,
        ...listen,
      ]);
      servers.push(server);
      await waitFor(
        `echo server in ${ns}`,
        async () => server.output().split('listening').length > listen.length,
        { proc: server },
      );
    }
  });

  after(async () => {
    for (const server of servers) await server.stop();
    await removeTopology();
    rmSync(dir, { recursive: true, force: true });
  });

  test('firewall - apply: a permitted flow passes with source NAT, others are dropped, counters count', async () => {
    const outcome = await firewall.apply(testPolicy(blocklist));
    assert.equal(outcome.changed, true);
    assert.deepEqual(outcome.warnings, []);
    assert.equal(outcome.sets[0]?.elements, 100_001);

    // the server has no route to 10.71.1.0/24: an answer proves the gateway masqueraded
    assert.equal(
      await curlFrom(NS.lan, `http://${ADDR.server}:8080/`),
      `peer=${ADDR.gwWan} local=${ADDR.server}:8080`,
    );
    assert.equal(
      await curlFrom(NS.lan, `http://${ADDR.server}:9090/`),
      'curl:28',
      'no rule permits tcp/9090',
    );

    const counters = await firewall.counters();
    assert.ok((counters.get('lan-web')?.packets ?? 0) > 0, 'the permit rule counted the flow');
    assert.ok((counters.get('default')?.packets ?? 0) > 0, 'the default deny counted the refused flow');
  });

  test('firewall - a 100,000-entry blocklist blocks its members and nothing else', async () => {
    await firewall.apply(testPolicy(blocklist));
    const before = (await firewall.counters()).get('block-listed')?.packets ?? 0;
    assert.equal(await curlFrom(NS.lan, `http://${ADDR.listed}:8080/`), 'curl:28');
    assert.match(await curlFrom(NS.lan, `http://${ADDR.unlisted}:8080/`), /^peer=/);
    const afterCount = (await firewall.counters()).get('block-listed')?.packets ?? 0;
    assert.ok(afterCount > before, 'the blocklist rule counted the blocked connection');
  });

  test('firewall - a port forward reaches the server behind the gateway, and hairpin works from inside', async () => {
    await firewall.apply(testPolicy(blocklist));
    const fromOutside = await curlFrom(NS.wan, `http://${ADDR.gwWan}:8443/`);
    assert.equal(fromOutside, `peer=${ADDR.server} local=${ADDR.client}:8000`);
    // from the LAN, to the public address: translated, and masqueraded so the reply comes back via the gateway
    const hairpin = await curlFrom(NS.lan, `http://${ADDR.gwWan}:8443/`);
    assert.equal(hairpin, `peer=${ADDR.gwLan} local=${ADDR.client}:8000`);
  });

  test('firewall - an unchanged ruleset is not re-applied, even from a new policy version; a changed one is', async () => {
    await firewall.apply(testPolicy(blocklist));
    const sameRules = await firewall.apply(testPolicy(blocklist, 'a new version, same rules'));
    assert.equal(sameRules.changed, false);
    const longer = writeBlocklist(mkdtempSync(join(dir, 'longer-')), 100_000, [ADDR.listed, ADDR.unlisted]);
    const changed = await firewall.apply(testPolicy(longer));
    assert.equal(changed.changed, true);
    assert.equal(await curlFrom(NS.lan, `http://${ADDR.unlisted}:8080/`), 'curl:28', 'the new list applies');
  });

  test('firewall - a ruleset nft refuses leaves the running one in place and returns nft’s message', async () => {
    await firewall.apply(testPolicy(blocklist));
    const running = await listRuleset(inGateway);
    await assert.rejects(
      applyScript(
        'table inet moat\ndelete table inet moat\ntable inet moat { chain c { tcp dport 99999 accept } }\n',
        inGateway,
      ),
      (err: unknown) => err instanceof NftError && /99999|out of range|Error/.test(err.message),
    );
    assert.equal(await listRuleset(inGateway), running, 'nothing changed');
    assert.match(await curlFrom(NS.lan, `http://${ADDR.server}:8080/`), /^peer=/, 'traffic still flows');
  });

  test('firewall - an unreadable address file refuses the policy and leaves the running ruleset', async () => {
    await firewall.apply(testPolicy(blocklist));
    const running = await listRuleset(inGateway);
    await assert.rejects(
      firewall.apply(testPolicy(join(dir, 'missing.txt'), 'points at a missing file')),
      /cannot read address file .*missing\.txt/,
    );
    assert.equal(await listRuleset(inGateway), running);
  });

  test('firewall - tables that are not Moat’s are never touched', async () => {
    const foreign =
      'table inet someone_else {\n\tchain input {\n\t\ttype filter hook input priority 10; policy accept;\n\t\ttcp dport 2222 counter accept\n\t}\n}\n';
    await applyScript(foreign, inGateway);
    const listForeign = () =>
      runCommand('ip', ['netns', 'exec', NS.gw, 'nft', 'list', 'table', 'inet', 'someone_else']).then(
        (r) => r.stdout,
      );
    const before = await listForeign();
    await firewall.apply(testPolicy(blocklist, 'another version'));
    await firewall.remove();
    assert.equal(await listForeign(), before);
    const all = await listRuleset(inGateway);
    assert.doesNotMatch(all, /table inet moat/, 'remove() deleted Moat’s table');
  });
});
