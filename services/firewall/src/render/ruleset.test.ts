import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Policy, parsePolicyText } from '@moat/policy';
import { loadExamplePolicy } from '@moat/policy/testing';
import { runCommand } from '@moat/testkit';
import { AddressFileError, parseAddressFile } from './addresses.js';
import { renderRuleset, updateScript } from './ruleset.js';
import { intervalElement, mergeIntervals } from './syntax.js';

const canCheck =
  process.getuid?.() === 0 && (await runCommand('sh', ['-c', 'command -v nft unshare'])).code === 0;
if (!canCheck) console.error('\n!!!!!!!! SKIPPING nft -c CHECKS: needs root, nft and unshare !!!!!!!!\n');

/** nft's own verdict on a script, in a throwaway network namespace (nothing real is touched). */
async function nftAccepts(script: string): Promise<void> {
  const file = `/tmp/moat-fw-check-${process.pid}.nft`;
  const { writeFileSync, rmSync } = await import('node:fs');
  writeFileSync(file, script);
  try {
    const r = await runCommand('unshare', ['-n', 'nft', '-c', '-f', file]);
    assert.equal(r.code, 0, `nft refused the ruleset:\n${r.stderr}`);
  } finally {
    rmSync(file, { force: true });
  }
}

function policy(yaml: string): Policy {
  const r = parsePolicyText(`apiVersion: moat/v1\nkind: Policy\nmetadata: { name: t }\n${yaml}`, 't.yaml');
  if (!r.ok) throw new Error(JSON.stringify(r.violations));
  return r.policy;
}

const ZONES = `
zones:
  lan: { interfaces: [lan0] }
  wan: { interfaces: [wan0] }
`;

test('render - the example policies render to rulesets nft accepts', { skip: !canCheck }, async () => {
  for (const name of ['demo', 'full']) {
    const rendered = renderRuleset(loadExamplePolicy(name).policy, {
      interception: { httpPort: 3129, tlsPort: 3130 },
      readFile: () => '192.0.2.1\n2001:db8::/64\n',
    });
    assert.ok(rendered.ruleCount > 10);
    await nftAccepts(rendered.script);
  }
});

test('render - one transaction that replaces only Moat’s table', () => {
  const { script } = renderRuleset(loadExamplePolicy('demo').policy);
  assert.match(script, /^table inet moat\ndelete table inet moat\ntable inet moat \{\n/);
  const tables = [...script.matchAll(/\btable (\w+) (\S+)/g)].map((m) => `${m[1]} ${m[2]}`);
  assert.deepEqual(new Set(tables), new Set(['inet moat']), 'no other table is named');
});

test('render - intervals merge, and elements are addresses, prefixes or ranges', () => {
  const v4 = (text: string) => BigInt(text.split('.').reduce((a, o) => a * 256 + Number(o), 0));
  const merged = mergeIntervals([
    { first: v4('10.0.0.128'), last: v4('10.0.0.255') },
    { first: v4('10.0.0.0'), last: v4('10.0.0.127') },
    { first: v4('10.0.1.5'), last: v4('10.0.1.5') },
    { first: v4('10.0.1.3'), last: v4('10.0.1.9') },
  ]);
  assert.deepEqual(
    merged.map((i) => intervalElement(4, i)),
    ['10.0.0.0/24', '10.0.1.3-10.0.1.9'],
  );
  assert.equal(
    intervalElement(6, { first: 0x20010db8n << 96n, last: (0x20010db8n << 96n) + 0xffffn }),
    '2001:db8::/112',
  );
});

test('render - an address file with a bad line is refused, naming the file and line', () => {
  assert.throws(
    () => parseAddressFile('/lists/bad.txt', '# ok\n192.0.2.1\n192.0.2.300\n'),
    (err: unknown) =>
      err instanceof AddressFileError && /\/lists\/bad\.txt:3: .*192\.0\.2\.300/.test(err.message),
  );
  assert.throws(() => parseAddressFile('/lists/names.txt', 'example.com\n'), /:1: .*DNS name/);
});

test('render - a rule applies to the families its addresses have', () => {
  const { script } = renderRuleset(
    policy(`${ZONES}
objects:
  addresses: { v6-only: "2001:db8::/64" }
securityRules:
  - { name: six, fromZones: lan, toZones: wan, source: any, destination: v6-only, service: https, action: permit }
`),
  );
  const rules = script.split('\n').filter((line) => line.includes('"rule six"'));
  assert.equal(rules.length, 1);
  assert.match(rules[0] as string, /ip6 daddr 2001:db8::\/64 tcp dport 443 accept/);
});

test('render - interception: the first matching rule decides, as in the forward chain', () => {
  const { script } = renderRuleset(
    policy(`${ZONES}
utmPolicies:
  web: { http: {}, https: {} }
securityRules:
  - { name: no-inspection, fromZones: lan, toZones: wan, source: any, destination: any, service: http, action: permit }
  - { name: inspected, fromZones: lan, toZones: wan, source: any, destination: any, service: [http, https], action: permit, utmPolicy: web }
`),
    { interception: { httpPort: 3129, tlsPort: 3130 } },
  );
  const nat = script.slice(script.indexOf('chain nat_prerouting'), script.indexOf('chain filter_input'));
  const lines = nat.split('\n').map((l) => l.trim());
  const first80 = lines.find((l) => l.includes('tcp dport 80'));
  assert.match(
    first80 ?? '',
    /accept comment "rule no-inspection"/,
    'port 80 belongs to the first rule: no redirect',
  );
  assert.ok(lines.some((l) => /tcp dport 443 redirect to :3130 comment "rule inspected"/.test(l)));
});

test('render - a DNS-name address is reported, not silently dropped', () => {
  const rendered = renderRuleset(
    policy(`${ZONES}
objects:
  addresses: { updates: updates.example.com }
securityRules:
  - { name: updates, fromZones: lan, toZones: wan, source: any, destination: updates, service: https, action: permit }
`),
  );
  assert.match(rendered.warnings.join('\n'), /rule updates: DNS-name addresses \(updates\.example\.com\)/);
});

test('render - QoS classes mark packets with the class ids both services derive from the class names', () => {
  const { script } = renderRuleset(
    policy(`${ZONES}
securityRules:
  - { name: voice, fromZones: lan, toZones: wan, source: any, destination: any, service: any, action: permit, qosClass: voice }
qos:
  interfaces: { wan0: { egressRate: 100mbit, defaultClass: bulk } }
  classes:
    voice: { rate: 10mbit, priority: 0 }
    bulk: { rate: 10mbit }
`),
  );
  assert.match(
    script,
    /ct mark set ct mark and 0xffff0000 or 0x43ed meta priority set 1:43ed accept comment "rule voice"/,
  );
  // later packets of a classified flow, both directions, get the class back from the conntrack mark
  assert.match(
    script,
    /ct state established,related meta priority set ct mark and 0xffff map \{ 0xdd8e : 1:dd8e, 0x43ed : 1:43ed \} accept\n\s+ct state established,related accept/,
  );
});

test('render - an update keeps unchanged sets, refills changed ones and deletes unused ones', () => {
  const yaml = (file: string) =>
    policy(`${ZONES}
objects:
  addressSets: { bad: { file: ${file} } }
securityRules:
  - { name: block, fromZones: lan, toZones: wan, source: any, destination: bad, service: any, action: deny }
`);
  const lists: Record<string, string> = { '/a.txt': '192.0.2.1\n', '/b.txt': '198.51.100.1\n' };
  const readFile = (path: string) => lists[path] as string;
  const first = renderRuleset(yaml('/a.txt'), { readFile });
  const [set] = first.namedSets;
  assert.ok(set);
  const applied = { chains: first.chainNames, sets: new Map([[set.name, set.digest]]) };

  const same = updateScript(renderRuleset(yaml('/a.txt'), { readFile }), applied);
  assert.match(same, /^flush table inet moat\n/);
  assert.doesNotMatch(same, /add element|flush set|delete set/, 'an unchanged set is not touched');

  lists['/a.txt'] = '192.0.2.1\n192.0.2.7\n';
  const refilled = updateScript(renderRuleset(yaml('/a.txt'), { readFile }), applied);
  assert.match(
    refilled,
    new RegExp(
      `flush set inet moat ${set.name}\\nadd element inet moat ${set.name} \\{\\n  192\\.0\\.2\\.1,\\n  192\\.0\\.2\\.7\\n\\}`,
    ),
  );

  const other = updateScript(renderRuleset(yaml('/b.txt'), { readFile }), applied);
  assert.match(other, new RegExp(`delete set inet moat ${set.name}`));
  assert.match(other, /add element inet moat f\w+_4a \{\n {2}198\.51\.100\.1\n\}/);

  const stale = updateScript(renderRuleset(yaml('/a.txt'), { readFile }), {
    chains: [...first.chainNames, 'from_an_older_version'],
    sets: new Map(),
  });
  assert.match(stale, /delete chain inet moat from_an_older_version/);
});

test('render - a rule that sends web traffic to the proxy and names a QoS class is warned about', () => {
  const rendered = renderRuleset(loadExamplePolicy('demo').policy, {
    interception: { httpPort: 3129, tlsPort: 3130 },
  });
  assert.ok(
    rendered.warnings.some((w) =>
      /^rule clients-web: http it sends to the proxy is re-originated by the gateway, so its qosClass interactive does not apply/.test(
        w,
      ),
    ),
    rendered.warnings.join('\n'),
  );
});
