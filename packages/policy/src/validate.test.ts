import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  canonicalPolicyJson,
  formatViolations,
  type PolicyValidation,
  PolicyValidationError,
  parsePolicyText,
  validatePolicy,
} from './validate.js';

const zones = { lan: { interfaces: ['lan0'] }, wan: { interfaces: ['wan0'] }, vpn: {} };

/** A small valid policy with the given sections replaced. */
function policy(sections: Record<string, unknown> = {}): Record<string, unknown> {
  return { apiVersion: 'moat/v1', kind: 'Policy', metadata: { name: 'test' }, zones, ...sections };
}

function rule(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'r',
    fromZones: 'lan',
    toZones: 'wan',
    source: 'any',
    destination: 'any',
    service: 'any',
    action: 'permit',
    ...fields,
  };
}

function paths(result: PolicyValidation): string[] {
  return result.ok ? [] : result.violations.map((v) => v.path);
}

function messageAt(result: PolicyValidation, path: string): string {
  assert.ok(!result.ok, 'expected violations');
  const violation = result.violations.find((v) => v.path === path);
  assert.ok(violation, `no violation at ${path}:\n${formatViolations(result.violations)}`);
  return violation.message;
}

describe('validate', () => {
  test('validate - accepts a minimal policy and fills in defaults', () => {
    const result = validatePolicy({ apiVersion: 'moat/v1', kind: 'Policy', metadata: { name: 'min' } });
    assert.ok(result.ok, result.ok ? '' : formatViolations(result.violations));
    assert.deepEqual(result.policy.zones, {});
    assert.deepEqual(result.policy.securityRules, []);
    assert.deepEqual(result.policy.nat, { source: [], destination: [] });
    assert.deepEqual(result.policy.objects.addresses, {});
    assert.equal(result.policy.vpn, undefined);
    assert.equal(result.policy.qos, undefined);
  });

  test('validate - normalises sizes, rates, durations, ports, days and single names', () => {
    const result = validatePolicy(
      policy({
        objects: {
          addresses: { lan: '10.0.0.0/8' },
          services: { app: { protocol: 'tcp', ports: [80, '8000-8100'] } },
          extensionLists: { exe: ['.EXE', 'dll'] },
          schedules: { work: { windows: [{ days: 'weekdays', start: '08:00', end: '18:00' }] } },
        },
        profiles: {
          antivirus: { av: { maxScanSize: '10MiB' } },
          tlsInspection: { tls: { minClientTls: 1.3 } },
        },
        securityRules: [rule({ source: 'lan', service: 'app', qosClass: 'bulk' })],
        qos: {
          interfaces: { wan0: { egressRate: '100mbit', defaultClass: 'bulk' } },
          classes: { bulk: { rate: '1.5mbit' } },
        },
        vpn: { ike: { rekeyTime: '8h' } },
      }),
    );
    assert.ok(result.ok, result.ok ? '' : formatViolations(result.violations));
    const { policy: p } = result;
    assert.deepEqual(p.objects.addresses.lan, { address: '10.0.0.0/8' });
    assert.deepEqual(p.objects.services.app, {
      protocol: 'tcp',
      ports: [
        { from: 80, to: 80 },
        { from: 8000, to: 8100 },
      ],
    });
    assert.deepEqual(p.objects.extensionLists.exe, ['exe', 'dll']);
    assert.deepEqual(p.objects.schedules.work?.windows[0]?.days, ['mon', 'tue', 'wed', 'thu', 'fri']);
    assert.equal(p.objects.schedules.work?.timezone, 'UTC');
    assert.equal(p.profiles.antivirus.av?.maxScanSize, 10 * 2 ** 20);
    assert.equal(p.profiles.antivirus.av?.failMode, 'closed');
    assert.equal(p.profiles.tlsInspection.tls?.minClientTls, '1.3');
    assert.deepEqual(p.securityRules[0]?.fromZones, ['lan']);
    assert.deepEqual(p.securityRules[0]?.service, ['app']);
    assert.equal(p.qos?.interfaces.wan0?.egressRate, 100_000_000);
    assert.equal(p.qos?.classes.bulk?.rate, 1_500_000);
    assert.equal(p.qos?.classes.bulk?.priority, 4);
    assert.equal(p.vpn?.ike.rekeyTime, 8 * 3600);
    assert.equal(p.vpn?.ike.dpdDelay, 30);
  });

  test('validate - reports every wrong type at once, each at its exact path', () => {
    const result = validatePolicy(
      policy({
        metadata: { name: 7 },
        zones: { lan: { interfaces: [1] }, wan: {} },
        profiles: { antivirus: { av: { maxScanSize: true, failMode: 'sometimes', scanUploads: 'yes' } } },
        securityRules: [rule({ action: 'allow', counter: 'no' }), 'not a rule'],
      }),
    );
    assert.deepEqual(paths(result), [
      'metadata.name',
      'zones.lan.interfaces[0]',
      'profiles.antivirus.av.maxScanSize',
      'profiles.antivirus.av.failMode',
      'profiles.antivirus.av.scanUploads',
      'securityRules[0].action',
      'securityRules[0].counter',
      'securityRules[1]',
    ]);
    assert.equal(messageAt(result, 'metadata.name'), 'expected a string, got 7');
    assert.equal(
      messageAt(result, 'profiles.antivirus.av.failMode'),
      'expected one of "closed", "open", got "sometimes"',
    );
    assert.equal(messageAt(result, 'securityRules[1]'), 'expected a mapping, got "not a rule"');
  });

  test('validate - reports missing required fields', () => {
    const result = validatePolicy({ apiVersion: 'moat/v1', kind: 'Policy', securityRules: [{ name: 'r' }] });
    assert.deepEqual(paths(result), [
      'securityRules[0].fromZones',
      'securityRules[0].toZones',
      'securityRules[0].source',
      'securityRules[0].destination',
      'securityRules[0].service',
      'securityRules[0].action',
      'metadata',
    ]);
    assert.match(messageAt(result, 'metadata'), /^required/);
    assert.match(
      messageAt(result, 'securityRules[0].fromZones'),
      /^required: expected a zone name or a list of them/,
    );
  });

  test('validate - reports each unknown key at its own path with a hint', () => {
    const result = validatePolicy(
      policy({
        securityRule: [],
        zones: { lan: { interface: ['lan0'], colour: 'blue' }, wan: {} },
        securityRules: [rule({ fromZone: 'lan' })],
      }),
    );
    assert.deepEqual(paths(result), [
      'zones.lan.interface',
      'zones.lan.colour',
      'securityRule',
      'securityRules[0].fromZone',
    ]);
    assert.equal(messageAt(result, 'securityRule'), 'unknown key; did you mean "securityRules"?');
    assert.equal(messageAt(result, 'zones.lan.interface'), 'unknown key; did you mean "interfaces"?');
    assert.equal(
      messageAt(result, 'zones.lan.colour'),
      'unknown key; allowed keys: description, interfaces, hostInboundServices',
    );
  });

  test('validate - rejects bad addresses and CIDRs', () => {
    const result = validatePolicy(
      policy({
        objects: {
          addresses: {
            a: '10.0.0.1/24',
            b: '300.1.1.1',
            c: '10.0.0.0/40',
            d: '10.0.0.9-10.0.0.1',
            e: { address: 'fe80::1%eth0' },
            'dotted.name': '2001:db8::1/48',
            ok: '2001:db8::/48',
          },
          addressSets: { set: { entries: ['192.0.2.0/24', 'host.example.com'] } },
        },
        securityRules: [rule({ source: '10.0.0.0/8' })],
      }),
    );
    assert.deepEqual(paths(result), [
      'objects.addresses.a',
      'objects.addresses.b',
      'objects.addresses.c',
      'objects.addresses.d',
      'objects.addresses.e.address',
      'objects.addresses["dotted.name"]',
      'objects.addressSets.set.entries[1]',
      'securityRules[0].source',
    ]);
    assert.match(messageAt(result, 'objects.addresses.a'), /use the network address 10\.0\.0\.0\/24/);
    assert.match(
      messageAt(result, 'securityRules[0].source'),
      /inline addresses are not allowed here; define one under objects\.addresses/,
    );
  });

  test('validate - rejects bad ports and port ranges', () => {
    const result = validatePolicy(
      policy({
        objects: {
          services: {
            a: { protocol: 'tcp', ports: 0 },
            b: { protocol: 'udp', ports: [53, '70000'] },
            c: { protocol: 'tcp', ports: '2000-1000' },
            d: { protocol: 'icmp', ports: 8 },
            e: { protocol: 'sctp', ports: 1 },
            f: { protocol: 'tcp', ports: [] },
          },
        },
      }),
    );
    assert.deepEqual(paths(result), [
      'objects.services.a.ports',
      'objects.services.b.ports[1]',
      'objects.services.c.ports',
      'objects.services.d.ports',
      'objects.services.e.protocol',
      'objects.services.f.ports',
    ]);
    assert.equal(
      messageAt(result, 'objects.services.c.ports'),
      'port range 2000-1000 ends before it starts; write it low-high',
    );
    assert.match(
      messageAt(result, 'objects.services.e.protocol'),
      /expected one of tcp, udp, icmp, icmpv6, esp, any, got "sctp"/,
    );
  });

  test('validate - checks QoS ceilings and that guaranteed rates fit the interface', () => {
    const result = validatePolicy(
      policy({
        qos: {
          interfaces: { wan0: { egressRate: '100mbit', ingressRate: '50mbit', defaultClass: 'bulk' } },
          classes: {
            voice: { rate: '20mbit', ceil: '10mbit' },
            bulk: { rate: '40mbit' },
            web: { rate: '30mbit', interface: 'wan0' },
          },
        },
      }),
    );
    assert.deepEqual(paths(result), ['qos.interfaces.wan0.ingressRate', 'qos.classes.voice.ceil']);
    assert.equal(
      messageAt(result, 'qos.interfaces.wan0.ingressRate'),
      'classes on "wan0" guarantee 90mbit in total (voice 20mbit, bulk 40mbit, web 30mbit), more than ingressRate 50mbit; lower their rates or raise ingressRate',
    );
    assert.equal(
      messageAt(result, 'qos.classes.voice.ceil'),
      'ceil 10mbit is below rate 20mbit; ceil must be at least rate',
    );
  });

  test('validate - reports unknown references with the defined names and a suggestion', () => {
    const result = validatePolicy(
      policy({
        objects: { addresses: { 'lan-net': '10.0.0.0/8' } },
        profiles: { antivirus: { default: {}, relaxed: {} } },
        utmPolicies: { web: { http: { antivirus: 'strict' } } },
        securityRules: [rule({ fromZones: ['lna'], source: 'lan-nt', service: ['htps'], utmPolicy: 'webb' })],
      }),
    );
    assert.deepEqual(paths(result), [
      'utmPolicies.web.http.antivirus',
      'securityRules[0].fromZones[0]',
      'securityRules[0].source',
      'securityRules[0].service[0]',
      'securityRules[0].utmPolicy',
    ]);
    assert.equal(
      messageAt(result, 'utmPolicies.web.http.antivirus'),
      'unknown antivirus profile "strict" — defined antivirus profiles: default, relaxed',
    );
    assert.equal(
      messageAt(result, 'securityRules[0].fromZones[0]'),
      'unknown zone "lna" (did you mean "lan"?) — defined zones: lan, wan, vpn',
    );
    assert.match(
      messageAt(result, 'securityRules[0].source'),
      /^unknown address or address set "lan-nt" \(did you mean "lan-net"\?\)/,
    );
    assert.match(messageAt(result, 'securityRules[0].service[0]'), /\(did you mean "https"\?\)/);
    assert.equal(
      messageAt(result, 'securityRules[0].utmPolicy'),
      'unknown UTM policy "webb" (did you mean "web"?) — defined UTM policies: web',
    );
  });

  test('validate - says when a profile reference names a profile of another kind', () => {
    const result = validatePolicy(
      policy({ profiles: { waf: { site: {} } }, utmPolicies: { p: { https: { antivirus: 'site' } } } }),
    );
    assert.equal(
      messageAt(result, 'utmPolicies.p.https.antivirus'),
      '"site" is a WAF profile, not an antivirus profile — no antivirus profiles are defined; define it under profiles.antivirus',
    );
  });

  test('validate - rejects duplicate names and colliding names', () => {
    const result = validatePolicy(
      policy({
        zones: { lan: { interfaces: ['lan0'] }, dmz: { interfaces: ['lan0'] } },
        objects: {
          addresses: { web: '10.0.0.1' },
          addressSets: { web: { entries: ['10.0.0.2'] } },
          services: { ssh: { protocol: 'tcp', ports: 2222 } },
        },
        securityRules: [
          rule({ name: 'a', toZones: 'dmz' }),
          rule({ name: 'b', toZones: 'dmz' }),
          rule({ name: 'a', toZones: 'dmz' }),
        ],
        nat: {
          destination: [
            { name: 'f', fromZones: 'lan', service: 'ssh', translateTo: { address: 'web' } },
            { name: 'f', fromZones: 'lan', service: 'ssh', translateTo: { address: '10.0.0.3' } },
          ],
        },
      }),
    );
    assert.deepEqual(paths(result), [
      'zones.dmz.interfaces[0]',
      'objects.addressSets.web',
      'objects.services.ssh',
      'securityRules[2].name',
      'nat.destination[1].name',
    ]);
    assert.equal(
      messageAt(result, 'securityRules[2].name'),
      'duplicate rule name "a" (also used by securityRules[0])',
    );
  });

  test('validate - rejects cycles in address and service sets', () => {
    const result = validatePolicy(
      policy({
        objects: {
          addressSets: { a: ['b'], b: { members: ['a'] }, self: ['self'] },
          serviceSets: { x: ['y', 'https'], y: ['x'] },
        },
      }),
    );
    assert.deepEqual(paths(result), [
      'objects.addressSets.b.members[0]',
      'objects.addressSets.self[0]',
      'objects.serviceSets.y[0]',
    ]);
    assert.match(messageAt(result, 'objects.addressSets.b.members[0]'), /^address set cycle: a → b → a/);
  });

  test('validate - a UTM policy or QoS class on a rule that does not permit is an error', () => {
    const result = validatePolicy(
      policy({
        utmPolicies: { web: { http: {} } },
        securityRules: [
          rule({ action: 'deny', utmPolicy: 'web' }),
          rule({ name: 'r2', action: 'reject', qosClass: 'bulk' }),
        ],
      }),
    );
    assert.deepEqual(paths(result), ['securityRules[0].utmPolicy', 'securityRules[1].qosClass']);
    assert.match(messageAt(result, 'securityRules[0].utmPolicy'), /remove utmPolicy or set action: permit/);
  });

  test('validate - checks "any" is not mixed with names', () => {
    const result = validatePolicy(policy({ securityRules: [rule({ toZones: ['any', 'wan'] })] }));
    assert.deepEqual(paths(result), ['securityRules[0].toZones[0]']);
  });

  test('validate - checks NAT references and port translation', () => {
    const result = validatePolicy(
      policy({
        objects: { addresses: { web: 'www.example.com' } },
        nat: {
          source: [
            { name: 's1', fromZones: 'lan', translation: 'masquerade' },
            { name: 's2', fromZones: 'lan', egressInterface: 'wan1', translation: { pool: 'web' } },
          ],
          destination: [
            {
              name: 'd1',
              fromZones: 'wan',
              service: 'ping',
              translateTo: { address: '10.0.0.5', port: 8080 },
            },
          ],
        },
      }),
    );
    assert.deepEqual(paths(result), [
      'nat.source[0]',
      'nat.source[1].egressInterface',
      'nat.source[1].translation.pool',
      'nat.destination[0].translateTo.port',
    ]);
    assert.match(messageAt(result, 'nat.source[1].egressInterface'), /\(did you mean "wan0"\?\)/);
  });

  test('validate - checks VPN pools, zones, certificates and secrets', () => {
    const result = validatePolicy(
      policy({
        zones: { lan: { interfaces: ['lan0'] } },
        vpn: {
          connections: {
            rw: {
              local: { auth: 'pubkey', id: 'gw.example.com' },
              remote: { auth: 'eap-mschapv2' },
              pools: 'rw',
              children: { all: { localTs: ['0.0.0.0/0', 'lan-net'] } },
            },
          },
          secrets: { psk: [{ secret: 'a', secretRef: { env: 'PSK' } }] },
        },
      }),
    );
    assert.deepEqual(paths(result), [
      'vpn.connections.rw.local.certificate',
      'vpn.connections.rw.remote.auth',
      'vpn.connections.rw.pools',
      'vpn.connections.rw.children.all.localTs[1]',
      'vpn.connections.rw.zone',
      'vpn.secrets.psk[0]',
    ]);
    assert.match(messageAt(result, 'vpn.connections.rw.zone'), /vpn is the default zone/);
  });

  test('validate - rejects input that is not a mapping', () => {
    assert.deepEqual(paths(validatePolicy(null)), ['']);
    assert.deepEqual(paths(validatePolicy([])), ['']);
    assert.deepEqual(paths(validatePolicy('policy')), ['']);
  });
});

describe('parse policy text', () => {
  const header = 'apiVersion: moat/v1\nkind: Policy\nmetadata:\n  name: t\n';

  test('parse policy text - reports YAML syntax errors with line and column', () => {
    const result = parsePolicyText(`${header}zones:\n  lan: { interfaces: [lan0 }\n`, 'policy.yaml');
    assert.ok(!result.ok);
    assert.ok(result.violations.every((v) => v.path === ''));
    assert.match(result.violations[0]?.message ?? '', /^policy\.yaml:6:\d+: /);
  });

  test('parse policy text - names the line without a source name', () => {
    const result = parsePolicyText('a: [1, 2\nb: 3\n');
    assert.ok(!result.ok);
    assert.match(result.violations[0]?.message ?? '', /^line 2:1: /);
  });

  test('parse policy text - duplicate keys are errors at the key path', () => {
    const result = parsePolicyText(`${header}zones:\n  lan: {}\n  wan: {}\n  lan: {}\n`);
    assert.deepEqual(paths(result), ['zones.lan']);
    assert.match(messageAt(result, 'zones.lan'), /^line 8:3: duplicate key/);
  });

  test('parse policy text - an alias without its anchor is an error at the alias', () => {
    const result = parsePolicyText(`${header}zones:\n  lan:\n    interfaces: *ifaces\n`, 'p.yaml');
    assert.deepEqual(paths(result), ['zones.lan.interfaces']);
    assert.match(
      messageAt(result, 'zones.lan.interfaces'),
      /^p\.yaml:7:17: alias \*ifaces refers to no anchor/,
    );
  });

  test('parse policy text - anchors, aliases and merge keys work', () => {
    const text = `${header}zones:\n  lan: &zone\n    interfaces: [lan0]\n  dmz:\n    <<: *zone\n    interfaces: [dmz0]\n`;
    const result = parsePolicyText(text);
    assert.ok(result.ok, result.ok ? '' : formatViolations(result.violations));
    assert.deepEqual(result.policy.zones.dmz?.interfaces, ['dmz0']);
  });

  test('parse policy text - an empty document is an error', () => {
    for (const text of ['', '\n', '# only a comment\n', '---\n']) {
      const result = parsePolicyText(text);
      assert.deepEqual(paths(result), [''], JSON.stringify(text));
      assert.match(messageAt(result, ''), /empty/);
    }
  });

  test('parse policy text - several documents in one text are an error', () => {
    const result = parsePolicyText(`${header}---\n${header}`);
    assert.deepEqual(paths(result), ['']);
  });

  test('parse policy text - accepts JSON, including tab indentation', () => {
    const result = parsePolicyText(
      '{\n\t"apiVersion": "moat/v1",\n\t"kind": "Policy",\n\t"metadata": {"name": "j"}\n}\n',
    );
    assert.ok(result.ok, result.ok ? '' : formatViolations(result.violations));
  });

  test('parse policy text - gives schema violations their line and column', () => {
    const result = parsePolicyText(`${header}zones:\n  lan:\n    interfaces: lan0\n    colour: blue\n`);
    assert.ok(!result.ok);
    assert.deepEqual(result.violations, [
      {
        path: 'zones.lan.colour',
        message: 'unknown key; allowed keys: description, interfaces, hostInboundServices',
        line: 8,
        column: 13,
      },
    ]);
  });

  test('parse policy text - YAML 1.2: yes/no/on are strings, not booleans', () => {
    const result = parsePolicyText(
      `${header}securityRules:\n  - {name: r, fromZones: any, toZones: any, source: any, destination: any, service: any, action: permit, counter: yes}\n`,
    );
    assert.deepEqual(paths(result), ['securityRules[0].counter']);
  });
});

describe('format and canonical form', () => {
  test('format and canonical form - formats one line per violation', () => {
    assert.equal(
      formatViolations([
        { path: 'a.b', message: 'bad' },
        { path: '', message: 'empty' },
        { path: 'c', message: 'worse', line: 3, column: 5 },
      ]),
      '  a.b: bad\n  <document>: empty\n  c: worse (line 3:5)',
    );
  });

  test('format and canonical form - PolicyValidationError carries the violations', () => {
    const violations = [{ path: 'zones', message: 'bad' }];
    const error = new PolicyValidationError(violations);
    assert.equal(error.name, 'PolicyValidationError');
    assert.ok(error instanceof Error);
    assert.deepEqual(error.violations, violations);
    assert.equal(error.message, 'policy is invalid (1 problem):\n  zones: bad');
  });

  test('format and canonical form - canonical JSON does not depend on key order', () => {
    const a = validatePolicy({
      apiVersion: 'moat/v1',
      kind: 'Policy',
      metadata: { name: 'x', description: 'd' },
      zones,
    });
    const b = validatePolicy({
      zones,
      metadata: { description: 'd', name: 'x' },
      kind: 'Policy',
      apiVersion: 'moat/v1',
    });
    assert.ok(a.ok && b.ok);
    assert.equal(canonicalPolicyJson(a.policy), canonicalPolicyJson(b.policy));
    assert.match(
      canonicalPolicyJson(a.policy),
      /^\{"apiVersion":"moat\/v1","kind":"Policy","metadata":\{"description":"d","name":"x"\}/,
    );
  });
});
