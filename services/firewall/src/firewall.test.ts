/**
 * The firewall with real packets: a policy rendered into nftables in a gateway namespace, then curl
 * from the client side and from the server side. Needs root, nft and curl; says so loudly otherwise.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type ManagedProcess, runCommand } from '@moat/testkit';
import { Firewall } from './firewall.js';
import { applyScript, listRuleset, NftError } from './nft.js';
import { curlFrom, packetTestSkipReason, startEchoServers } from './testing/packets.js';
import { testPolicy, writeBlocklist } from './testing/policies.js';
import { ADDR, createTopology, NS, removeTopology } from './testing/topology.js';

const inGateway = { command: ['ip', 'netns', 'exec', NS.gw, 'nft'] };

const reason = await packetTestSkipReason();
if (reason) console.error(`\n!!!!!!!! SKIPPING FIREWALL PACKET TESTS: ${reason} !!!!!!!!\n`);

describe('firewall with real packets', { skip: reason }, () => {
  let dir: string;
  let blocklist: string;
  const servers: ManagedProcess[] = [];
  const firewall = new Firewall({ nft: inGateway });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'moat-fw-'));
    blocklist = writeBlocklist(dir, 100_000, [ADDR.listed]);
    await createTopology();
    servers.push(...(await startEchoServers()));
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

  test('firewall - a rule change keeps an unchanged blocklist set, and the new rules apply', async () => {
    await firewall.apply(testPolicy(blocklist));
    assert.match(await curlFrom(NS.lan, `http://${ADDR.server}:9090/`), /^curl:/);
    const open9090 =
      '  - { name: allow-9090, fromZones: lan, toZones: wan, source: any, destination: any, service: tcp-9090, action: permit }';
    const outcome = await firewall.apply(testPolicy(blocklist, 'with 9090', open9090));
    assert.equal(outcome.changed, true);
    assert.match(await curlFrom(NS.lan, `http://${ADDR.server}:9090/`), /^peer=/, 'the new rule applies');
    assert.equal(
      await curlFrom(NS.lan, `http://${ADDR.listed}:8080/`),
      'curl:28',
      'the kept set still blocks',
    );
    const set = await runCommand('ip', [
      'netns',
      'exec',
      NS.gw,
      'nft',
      'list',
      'set',
      'inet',
      'moat',
      outcome.sets[0]?.name ?? '',
    ]);
    assert.equal(
      (set.stdout.match(/100\.64\./g) ?? []).length > 1000,
      true,
      'the set still holds its entries',
    );
  });

  test('firewall - a restarted firewall takes over the table the kernel kept, sets included', async () => {
    await firewall.apply(testPolicy(blocklist));
    const restarted = new Firewall({ nft: inGateway });
    const outcome = await restarted.apply(testPolicy(blocklist, 'after a restart'));
    assert.equal(outcome.changed, true, 'a new process applies once');
    assert.equal(await curlFrom(NS.lan, `http://${ADDR.listed}:8080/`), 'curl:28');
    assert.match(await curlFrom(NS.lan, `http://${ADDR.server}:8080/`), /^peer=/);
    assert.equal((await restarted.apply(testPolicy(blocklist))).changed, false);
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
