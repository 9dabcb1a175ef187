/**
 * Checks that span fields or sections: references resolve to the right kind of thing, names are unique, sets
 * have no cycles, QoS rates fit, and so on. They work on the raw document (not the parsed one) so that they
 * still run, and report, when other parts of the document fail the schema.
 */
import { ANY, closestMatch, listNames, NAME_PATTERN, ZONE_NAME_PATTERN } from './common.js';
import { type AddressKind, describeKind, isAddressRef, parseAddress } from './net.js';
import { PREDEFINED_SERVICE_SETS, PREDEFINED_SERVICES } from './objects.js';
import { PROFILE_KINDS } from './profiles.js';
import { formatRate, parseRate } from './units.js';
import { UTM_PROTOCOL_PROFILES } from './utm-policies.js';

export type PathSegment = string | number;
export interface RawViolation {
  path: PathSegment[];
  message: string;
}

type Rec = Record<string, unknown>;
const isRecord = (value: unknown): value is Rec =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const rec = (value: unknown): Rec => (isRecord(value) ? value : {});
const arr = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);
const str = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

interface Ref {
  name: string;
  path: PathSegment[];
}

/** The names in a "one or many" field: a string, or the strings of a list, with their paths. */
function refsOf(value: unknown, path: PathSegment[]): Ref[] {
  if (typeof value === 'string') return [{ name: value, path }];
  return arr(value).flatMap((item, index) =>
    typeof item === 'string' ? [{ name: item, path: [...path, index] }] : [],
  );
}

/** A namespace of defined names, for resolving references and writing helpful messages. */
class Names {
  constructor(
    readonly kind: string,
    readonly plural: string,
    readonly where: string,
    readonly names: readonly string[],
    readonly extra: readonly string[] = [],
  ) {}
  has(name: string): boolean {
    return this.names.includes(name) || this.extra.includes(name);
  }
  unknown(name: string): string {
    const guess = closestMatch(name, [...this.names, ...this.extra]);
    const hint = guess === undefined ? '' : ` (did you mean "${guess}"?)`;
    const predefined = this.extra.length > 0 ? `; predefined: ${listNames(this.extra, 8)}` : '';
    if (this.names.length === 0) {
      return `unknown ${this.kind} "${name}"${hint} — no ${this.plural} are defined; define it under ${this.where}${predefined}`;
    }
    return `unknown ${this.kind} "${name}"${hint} — defined ${this.plural}: ${listNames(this.names)}${predefined}`;
  }
}

class Checker {
  readonly violations: RawViolation[] = [];

  add(path: PathSegment[], message: string): void {
    this.violations.push({ path, message });
  }

  /** Check references against one or more namespaces; `allowAny` accepts the keyword any (alone). */
  resolve(refs: Ref[], spaces: readonly Names[], pattern: RegExp, allowAny: boolean): void {
    const first = spaces[0];
    if (first === undefined) return;
    for (const ref of refs) {
      if (!pattern.test(ref.name)) continue; // the schema reports malformed names
      if (ref.name === ANY) {
        if (!allowAny) this.add(ref.path, `"any" is not allowed here; name a ${first.kind}`);
        else if (refs.length > 1)
          this.add(ref.path, '"any" cannot be combined with other names; remove it or the others');
        continue;
      }
      if (spaces.some((space) => space.has(ref.name))) continue;
      if (spaces.length === 1) {
        this.add(ref.path, first.unknown(ref.name));
        continue;
      }
      const all = spaces.flatMap((space) => [...space.names, ...space.extra]);
      const guess = closestMatch(ref.name, all);
      const hint = guess === undefined ? '' : ` (did you mean "${guess}"?)`;
      const kinds = spaces.map((space) => space.kind).join(' or ');
      const defined = spaces
        .map((space) => `${space.plural}: ${space.names.length === 0 ? '(none)' : listNames(space.names)}`)
        .join('; ');
      const extras = spaces.flatMap((space) => space.extra);
      const predefined = extras.length > 0 ? `; predefined: ${listNames(extras, 8)}` : '';
      this.add(ref.path, `unknown ${kinds} "${ref.name}"${hint} — defined ${defined}${predefined}`);
    }
  }

  /** Report a name defined twice in an ordered list of named items. */
  uniqueNames(items: unknown[], path: PathSegment[], what: string): void {
    const seen = new Map<string, number>();
    items.forEach((item, index) => {
      const name = str(rec(item).name);
      if (name === undefined) return;
      const first = seen.get(name);
      if (first === undefined) seen.set(name, index);
      else
        this.add(
          [...path, index, 'name'],
          `duplicate ${what} name "${name}" (also used by ${formatRawPath([...path, first])})`,
        );
    });
  }

  /** Report each cycle of a membership graph once, at the reference that closes it. */
  cycles(graph: Map<string, Ref[]>, what: string): void {
    const state = new Map<string, 'visiting' | 'done'>();
    const stack: string[] = [];
    const reported = new Set<string>();
    const visit = (node: string): void => {
      state.set(node, 'visiting');
      stack.push(node);
      for (const edge of graph.get(node) ?? []) {
        if (!graph.has(edge.name)) continue;
        const seen = state.get(edge.name);
        if (seen === 'visiting') {
          const cycle = [...stack.slice(stack.indexOf(edge.name)), edge.name];
          const key = [...new Set(cycle)].sort().join('\0');
          if (!reported.has(key)) {
            reported.add(key);
            this.add(
              edge.path,
              `${what} cycle: ${cycle.join(' → ')}; a set cannot contain itself, directly or not`,
            );
          }
        } else if (seen === undefined) {
          visit(edge.name);
        }
      }
      stack.pop();
      state.set(node, 'done');
    };
    for (const node of graph.keys()) if (!state.has(node)) visit(node);
  }
}

/** Format a raw path for use inside messages (the same format as violation paths). */
export function formatRawPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/** Run every cross-field check on a raw (unparsed) policy document. */
export function crossCheckPolicy(input: unknown): RawViolation[] {
  const root = rec(input);
  const check = new Checker();

  const zonesRaw = rec(root.zones);
  const objects = rec(root.objects);
  const addressesRaw = rec(objects.addresses);
  const addressSetsRaw = rec(objects.addressSets);
  const servicesRaw = rec(objects.services);
  const serviceSetsRaw = rec(objects.serviceSets);
  const profiles = rec(root.profiles);
  const utmPoliciesRaw = rec(root.utmPolicies);
  const qos = rec(root.qos);
  const vpn = rec(root.vpn);
  const nat = rec(root.nat);

  const zones = new Names('zone', 'zones', 'zones', Object.keys(zonesRaw));
  const addresses = new Names('address', 'addresses', 'objects.addresses', Object.keys(addressesRaw));
  const addressSets = new Names(
    'address set',
    'address sets',
    'objects.addressSets',
    Object.keys(addressSetsRaw),
  );
  const services = new Names(
    'service',
    'services',
    'objects.services',
    Object.keys(servicesRaw),
    Object.keys(PREDEFINED_SERVICES),
  );
  const serviceSets = new Names(
    'service set',
    'service sets',
    'objects.serviceSets',
    Object.keys(serviceSetsRaw),
    Object.keys(PREDEFINED_SERVICE_SETS),
  );
  const urlPatterns = new Names(
    'URL pattern list',
    'URL pattern lists',
    'objects.urlPatterns',
    Object.keys(rec(objects.urlPatterns)),
  );
  const urlCategories = new Names(
    'URL category',
    'URL categories',
    'objects.urlCategories',
    Object.keys(rec(objects.urlCategories)),
  );
  const mimeLists = new Names(
    'MIME list',
    'MIME lists',
    'objects.mimeLists',
    Object.keys(rec(objects.mimeLists)),
  );
  const extensionLists = new Names(
    'extension list',
    'extension lists',
    'objects.extensionLists',
    Object.keys(rec(objects.extensionLists)),
  );
  const schedules = new Names(
    'schedule',
    'schedules',
    'objects.schedules',
    Object.keys(rec(objects.schedules)),
  );
  const utmPolicies = new Names('UTM policy', 'UTM policies', 'utmPolicies', Object.keys(utmPoliciesRaw));
  const qosClassesRaw = rec(qos.classes);
  const qosInterfacesRaw = rec(qos.interfaces);
  const qosClasses = new Names('QoS class', 'QoS classes', 'qos.classes', Object.keys(qosClassesRaw));
  const vpnPools = new Names('VPN pool', 'VPN pools', 'vpn.pools', Object.keys(rec(vpn.pools)));
  const profileNames = Object.fromEntries(
    PROFILE_KINDS.map((kind) => [kind, Object.keys(rec(profiles[kind]))]),
  ) as Record<(typeof PROFILE_KINDS)[number], string[]>;

  const addressSpaces = [addresses, addressSets];
  const serviceSpaces = [services, serviceSets];

  /** The kind of a named address object, if it is one and it parses. */
  const addressKind = (name: string): AddressKind | undefined => {
    const raw = addressesRaw[name];
    const text = str(raw) ?? str(rec(raw).address);
    if (text === undefined) return undefined;
    const parsed = parseAddress(text);
    return 'error' in parsed ? undefined : parsed.kind;
  };

  /** Check a field that is either an address literal or the name of an address of the given kinds. */
  const addressOrRef = (
    value: unknown,
    path: PathSegment[],
    kinds: readonly AddressKind[],
    what: string,
  ): void => {
    const text = str(value);
    if (text === undefined || !isAddressRef(text)) return;
    if (!addresses.has(text)) {
      check.add(path, addresses.unknown(text));
      return;
    }
    const kind = addressKind(text);
    if (kind !== undefined && !kinds.includes(kind)) {
      const wanted = kinds.map(describeKind).join(' or ');
      check.add(path, `address "${text}" is a ${describeKind(kind)}; ${what} needs a ${wanted}`);
    }
  };

  // ------------------------------------------------------------------------------------------------ zones
  const interfaceZone = new Map<string, string>();
  for (const [zone, value] of Object.entries(zonesRaw)) {
    const z = rec(value);
    for (const ref of refsOf(z.interfaces, ['zones', zone, 'interfaces'])) {
      const other = interfaceZone.get(ref.name);
      if (other === undefined) interfaceZone.set(ref.name, zone);
      else if (other === zone) check.add(ref.path, `interface "${ref.name}" is listed twice`);
      else
        check.add(
          ref.path,
          `interface "${ref.name}" is already in zone "${other}"; an interface belongs to one zone`,
        );
    }
    check.resolve(
      refsOf(z.hostInboundServices, ['zones', zone, 'hostInboundServices']),
      serviceSpaces,
      NAME_PATTERN,
      false,
    );
  }
  const boundInterfaces = [...interfaceZone.keys()];
  const checkBoundInterface = (name: unknown, path: PathSegment[]): void => {
    if (typeof name !== 'string' || boundInterfaces.length === 0 || interfaceZone.has(name)) return;
    const guess = closestMatch(name, boundInterfaces);
    check.add(
      path,
      `interface "${name}" is not bound to any zone${guess === undefined ? '' : ` (did you mean "${guess}"?)`} — bound interfaces: ${listNames(boundInterfaces)}`,
    );
  };

  // ---------------------------------------------------------------------------------------------- objects
  const addressGraph = new Map<string, Ref[]>();
  for (const [name, value] of Object.entries(addressSetsRaw)) {
    const path: PathSegment[] = ['objects', 'addressSets', name];
    if (Object.hasOwn(addressesRaw, name)) {
      check.add(
        path,
        `"${name}" is also an address (objects.addresses); addresses and address sets share one namespace — rename one`,
      );
    }
    let members: Ref[];
    if (Array.isArray(value)) {
      members = refsOf(value, path);
    } else {
      const set = rec(value);
      members = refsOf(set.members, [...path, 'members']);
      if (
        isRecord(value) &&
        arr(set.members).length === 0 &&
        arr(set.entries).length === 0 &&
        set.file === undefined
      ) {
        check.add(path, 'an address set needs members, entries or a file');
      }
    }
    check.resolve(members, addressSpaces, NAME_PATTERN, false);
    addressGraph.set(name, members);
  }
  check.cycles(addressGraph, 'address set');

  for (const [name, value] of Object.entries(servicesRaw)) {
    const path: PathSegment[] = ['objects', 'services', name];
    const predefined = PREDEFINED_SERVICES[name] ?? PREDEFINED_SERVICE_SETS[name];
    if (predefined !== undefined) {
      check.add(
        path,
        `"${name}" is a predefined service (${predefined.description ?? name}); use it without defining it, or pick another name`,
      );
    }
    const service = rec(value);
    if (service.icmpCode !== undefined && service.icmpType === undefined)
      check.add([...path, 'icmpCode'], 'icmpCode needs icmpType');
  }
  const serviceGraph = new Map<string, Ref[]>();
  for (const [name, value] of Object.entries(serviceSetsRaw)) {
    const path: PathSegment[] = ['objects', 'serviceSets', name];
    const predefined = PREDEFINED_SERVICES[name] ?? PREDEFINED_SERVICE_SETS[name];
    if (predefined !== undefined) {
      check.add(
        path,
        `"${name}" is a predefined service (${predefined.description ?? name}); use it without defining it, or pick another name`,
      );
    } else if (Object.hasOwn(servicesRaw, name)) {
      check.add(
        path,
        `"${name}" is also a service (objects.services); services and service sets share one namespace — rename one`,
      );
    }
    const members = Array.isArray(value)
      ? refsOf(value, path)
      : refsOf(rec(value).members, [...path, 'members']);
    check.resolve(members, serviceSpaces, NAME_PATTERN, false);
    serviceGraph.set(name, members);
  }
  check.cycles(serviceGraph, 'service set');

  for (const [name, value] of Object.entries(rec(objects.urlCategories))) {
    const path: PathSegment[] = ['objects', 'urlCategories', name];
    const category = rec(value);
    if (!isRecord(value)) continue;
    if (category.source !== undefined && category.categories === undefined) {
      check.add(
        [...path, 'categories'],
        'required with source: list the category directories to use, e.g. [adult, gambling]',
      );
    }
    if (category.categories !== undefined && category.source === undefined) {
      check.add(
        [...path, 'source'],
        'required with categories: the list directory (UT1/squidGuard layout) they are in',
      );
    }
    if (
      category.source === undefined &&
      category.categories === undefined &&
      category.domains === undefined &&
      category.urls === undefined
    ) {
      check.add(path, 'a URL category needs source + categories, domains or urls');
    }
  }

  for (const [name, value] of Object.entries(rec(objects.schedules))) {
    arr(rec(value).windows).forEach((window, index) => {
      const { start, end } = rec(window);
      if (typeof start === 'string' && start === end) {
        check.add(
          ['objects', 'schedules', name, 'windows', index, 'end'],
          'end equals start, so the window is empty; for a whole day use 00:00-24:00',
        );
      }
    });
  }

  // --------------------------------------------------------------------------------------------- profiles
  const listRef = (value: unknown, path: PathSegment[], space: Names): void => {
    if (typeof value !== 'string' || !NAME_PATTERN.test(value) || space.has(value)) return;
    check.add(path, `${space.unknown(value)}; or give the values inline as a list: [${value}]`);
  };
  for (const [name, value] of Object.entries(rec(profiles.antivirus))) {
    const path: PathSegment[] = ['profiles', 'antivirus', name];
    listRef(rec(value).scanMimeTypes, [...path, 'scanMimeTypes'], mimeLists);
    listRef(rec(value).scanExtensions, [...path, 'scanExtensions'], extensionLists);
  }
  for (const [name, value] of Object.entries(rec(profiles.webFiltering))) {
    const path: PathSegment[] = ['profiles', 'webFiltering', name];
    const profile = rec(value);
    for (const field of ['blockCategories', 'allowCategories'] as const) {
      check.resolve(refsOf(profile[field], [...path, field]), [urlCategories], NAME_PATTERN, false);
    }
    for (const field of ['blockUrlPatterns', 'allowUrlPatterns'] as const) {
      check.resolve(refsOf(profile[field], [...path, field]), [urlPatterns], NAME_PATTERN, false);
    }
    const overlap = (
      allow: 'allowCategories' | 'allowUrlPatterns',
      block: 'blockCategories' | 'blockUrlPatterns',
    ) => {
      const blocked = new Set(refsOf(profile[block], []).map((ref) => ref.name));
      for (const ref of refsOf(profile[allow], [...path, allow])) {
        if (blocked.has(ref.name))
          check.add(ref.path, `"${ref.name}" is also in ${block}; remove it from one of the two lists`);
      }
    };
    overlap('allowCategories', 'blockCategories');
    overlap('allowUrlPatterns', 'blockUrlPatterns');
  }
  for (const [name, value] of Object.entries(rec(profiles.contentFiltering))) {
    const path: PathSegment[] = ['profiles', 'contentFiltering', name];
    listRef(rec(value).blockMimeTypes, [...path, 'blockMimeTypes'], mimeLists);
    listRef(rec(value).blockExtensions, [...path, 'blockExtensions'], extensionLists);
  }
  for (const [name, value] of Object.entries(rec(profiles.tlsInspection))) {
    const path: PathSegment[] = ['profiles', 'tlsInspection', name];
    const profile = rec(value);
    for (const field of ['bypassCategories', 'blockCategories'] as const) {
      check.resolve(refsOf(profile[field], [...path, field]), [urlCategories], NAME_PATTERN, false);
    }
    listRef(profile.bypassHosts, [...path, 'bypassHosts'], urlPatterns);
  }

  // ----------------------------------------------------------------------------------------- UTM policies
  const profileLabel: Record<(typeof PROFILE_KINDS)[number], string> = {
    antivirus: 'antivirus',
    webFiltering: 'web filtering',
    contentFiltering: 'content filtering',
    tlsInspection: 'TLS inspection',
    waf: 'WAF',
  };
  for (const [name, value] of Object.entries(utmPoliciesRaw)) {
    const path: PathSegment[] = ['utmPolicies', name];
    const policy = rec(value);
    if (
      isRecord(value) &&
      !Object.keys(UTM_PROTOCOL_PROFILES).some((protocol) => policy[protocol] !== undefined)
    ) {
      check.add(path, 'a UTM policy needs at least one of http, https, ftp');
    }
    for (const [protocol, kinds] of Object.entries(UTM_PROTOCOL_PROFILES)) {
      const section = rec(policy[protocol]);
      for (const kind of kinds) {
        const ref = section[kind];
        if (typeof ref !== 'string' || !NAME_PATTERN.test(ref)) continue;
        const defined = profileNames[kind];
        if (defined.includes(ref)) continue;
        const label = profileLabel[kind];
        const otherKind = PROFILE_KINDS.find((other) => profileNames[other].includes(ref));
        const guess = closestMatch(ref, defined);
        const hint = guess === undefined ? '' : ` (did you mean "${guess}"?)`;
        const listing =
          defined.length === 0
            ? `no ${label} profiles are defined; define it under profiles.${kind}`
            : `defined ${label} profiles: ${listNames(defined)}`;
        check.add(
          [...path, protocol, kind],
          otherKind === undefined
            ? `unknown ${label} profile "${ref}"${hint} — ${listing}`
            : `"${ref}" is ${withArticle(profileLabel[otherKind])} profile, not ${withArticle(label)} profile — ${listing}`,
        );
      }
    }
  }

  // --------------------------------------------------------------------------------------- security rules
  const rules = arr(root.securityRules);
  check.uniqueNames(rules, ['securityRules'], 'rule');
  rules.forEach((value, index) => {
    const path: PathSegment[] = ['securityRules', index];
    const rule = rec(value);
    check.resolve(refsOf(rule.fromZones, [...path, 'fromZones']), [zones], ZONE_NAME_PATTERN, true);
    check.resolve(refsOf(rule.toZones, [...path, 'toZones']), [zones], ZONE_NAME_PATTERN, true);
    check.resolve(refsOf(rule.source, [...path, 'source']), addressSpaces, NAME_PATTERN, true);
    check.resolve(refsOf(rule.destination, [...path, 'destination']), addressSpaces, NAME_PATTERN, true);
    check.resolve(refsOf(rule.service, [...path, 'service']), serviceSpaces, NAME_PATTERN, true);
    if (typeof rule.schedule === 'string')
      check.resolve([{ name: rule.schedule, path: [...path, 'schedule'] }], [schedules], NAME_PATTERN, false);
    const notPermit = rule.action === 'deny' || rule.action === 'reject';
    if (typeof rule.utmPolicy === 'string') {
      if (notPermit) {
        check.add(
          [...path, 'utmPolicy'],
          `a UTM policy applies only to permitted traffic; remove utmPolicy or set action: permit (action is ${rule.action})`,
        );
      } else {
        check.resolve(
          [{ name: rule.utmPolicy, path: [...path, 'utmPolicy'] }],
          [utmPolicies],
          NAME_PATTERN,
          false,
        );
      }
    }
    if (typeof rule.qosClass === 'string') {
      if (notPermit) {
        check.add(
          [...path, 'qosClass'],
          `a QoS class applies only to permitted traffic; remove qosClass or set action: permit (action is ${rule.action})`,
        );
      } else {
        check.resolve(
          [{ name: rule.qosClass, path: [...path, 'qosClass'] }],
          [qosClasses],
          NAME_PATTERN,
          false,
        );
      }
    }
  });

  // -------------------------------------------------------------------------------------------------- NAT
  const sourceNat = arr(nat.source);
  check.uniqueNames(sourceNat, ['nat', 'source'], 'source NAT rule');
  sourceNat.forEach((value, index) => {
    const path: PathSegment[] = ['nat', 'source', index];
    const rule = rec(value);
    check.resolve(refsOf(rule.fromZones, [...path, 'fromZones']), [zones], ZONE_NAME_PATTERN, true);
    check.resolve(refsOf(rule.toZones, [...path, 'toZones']), [zones], ZONE_NAME_PATTERN, true);
    if (isRecord(value) && rule.toZones === undefined && rule.egressInterface === undefined) {
      check.add(path, 'set toZones or egressInterface to say where the traffic leaves');
    } else if (rule.toZones !== undefined && rule.egressInterface !== undefined) {
      check.add([...path, 'egressInterface'], 'set either toZones or egressInterface, not both');
    }
    checkBoundInterface(rule.egressInterface, [...path, 'egressInterface']);
    check.resolve(refsOf(rule.source, [...path, 'source']), addressSpaces, NAME_PATTERN, true);
    check.resolve(refsOf(rule.destination, [...path, 'destination']), addressSpaces, NAME_PATTERN, true);
    check.resolve(refsOf(rule.service, [...path, 'service']), serviceSpaces, NAME_PATTERN, true);
    addressOrRef(
      rec(rule.translation).pool,
      [...path, 'translation', 'pool'],
      ['ip', 'prefix', 'range'],
      'a NAT pool',
    );
  });

  /** Protocols a service name resolves to (through sets), for checks that need tcp/udp. */
  const protocolsOf = (name: string, seen = new Set<string>()): Set<string> => {
    const out = new Set<string>();
    if (seen.has(name)) return out;
    seen.add(name);
    const service = servicesRaw[name] ?? PREDEFINED_SERVICES[name];
    if (service !== undefined) {
      const protocol = str(rec(service).protocol);
      if (protocol !== undefined) out.add(protocol);
      return out;
    }
    const set = serviceSetsRaw[name] ?? PREDEFINED_SERVICE_SETS[name];
    const members = Array.isArray(set) ? set : arr(rec(set).members);
    for (const member of members)
      if (typeof member === 'string') for (const p of protocolsOf(member, seen)) out.add(p);
    return out;
  };

  const destinationNat = arr(nat.destination);
  check.uniqueNames(destinationNat, ['nat', 'destination'], 'destination NAT rule');
  destinationNat.forEach((value, index) => {
    const path: PathSegment[] = ['nat', 'destination', index];
    const rule = rec(value);
    check.resolve(refsOf(rule.fromZones, [...path, 'fromZones']), [zones], ZONE_NAME_PATTERN, true);
    check.resolve(refsOf(rule.source, [...path, 'source']), addressSpaces, NAME_PATTERN, true);
    addressOrRef(
      rule.destinationAddress,
      [...path, 'destinationAddress'],
      ['ip'],
      'a destination NAT address',
    );
    const service = str(rule.service);
    if (service !== undefined)
      check.resolve([{ name: service, path: [...path, 'service'] }], serviceSpaces, NAME_PATTERN, true);
    const translateTo = rec(rule.translateTo);
    addressOrRef(translateTo.address, [...path, 'translateTo', 'address'], ['ip'], 'a port forward target');
    if (translateTo.port !== undefined && service !== undefined) {
      const protocols = service === ANY ? new Set(['any']) : protocolsOf(service);
      const other = [...protocols].filter((protocol) => protocol !== 'tcp' && protocol !== 'udp');
      if (other.length > 0) {
        check.add(
          [...path, 'translateTo', 'port'],
          `port translation needs a tcp or udp service, but "${service}" includes ${other.join(', ')}`,
        );
      }
    }
  });

  // -------------------------------------------------------------------------------------------------- VPN
  const secrets = rec(vpn.secrets);
  const pskSecrets = arr(secrets.psk);
  const eapSecrets = arr(secrets.eap);
  for (const [name, value] of Object.entries(rec(vpn.connections))) {
    const path: PathSegment[] = ['vpn', 'connections', name];
    const connection = rec(value);
    if (!isRecord(value)) continue;
    check.resolve(refsOf(connection.pools, [...path, 'pools']), [vpnPools], NAME_PATTERN, false);
    const zone = connection.zone ?? 'vpn';
    if (typeof zone === 'string' && ZONE_NAME_PATTERN.test(zone) && !zones.has(zone)) {
      check.add(
        [...path, 'zone'],
        `${zones.unknown(zone)}${connection.zone === undefined ? ' (vpn is the default zone: define it, or set zone)' : ''}`,
      );
    }
    const local = rec(connection.local);
    const remote = rec(connection.remote);
    if (local.auth === 'pubkey' && local.certificate === undefined) {
      check.add(
        [...path, 'local', 'certificate'],
        'required when local.auth is pubkey: the gateway certificate (PEM)',
      );
    }
    if ((local.auth === 'psk' || remote.auth === 'psk') && pskSecrets.length === 0) {
      check.add(
        [...path, remote.auth === 'psk' ? 'remote' : 'local', 'auth'],
        'psk authentication needs a pre-shared key under vpn.secrets.psk',
      );
    }
    if (remote.auth === 'eap-mschapv2' && eapSecrets.length === 0) {
      check.add([...path, 'remote', 'auth'], 'eap-mschapv2 needs at least one user under vpn.secrets.eap');
    }
    if (typeof remote.auth === 'string' && remote.auth.startsWith('eap-') && local.auth === 'psk') {
      check.add(
        [...path, 'local', 'auth'],
        'with EAP peers the gateway must authenticate with pubkey (a certificate)',
      );
    }
    for (const [child, childValue] of Object.entries(rec(connection.children))) {
      for (const field of ['localTs', 'remoteTs'] as const) {
        arr(rec(childValue)[field]).forEach((selector, index) => {
          if (selector !== 'dynamic')
            addressOrRef(
              selector,
              [...path, 'children', child, field, index],
              ['ip', 'prefix', 'range'],
              'a traffic selector',
            );
        });
      }
    }
  }
  const secretChoice = (entries: unknown[], kind: 'psk' | 'eap'): void => {
    entries.forEach((entry, index) => {
      const secret = rec(entry);
      if (!isRecord(entry)) return;
      const count = Number(secret.secret !== undefined) + Number(secret.secretRef !== undefined);
      if (count !== 1) {
        check.add(
          ['vpn', 'secrets', kind, index],
          count === 0 ? 'set secret or secretRef' : 'set either secret or secretRef, not both',
        );
      }
    });
  };
  secretChoice(pskSecrets, 'psk');
  secretChoice(eapSecrets, 'eap');
  const eapIds = new Map<string, number>();
  eapSecrets.forEach((entry, index) => {
    const id = str(rec(entry).id);
    if (id === undefined) return;
    const first = eapIds.get(id);
    if (first === undefined) eapIds.set(id, index);
    else
      check.add(
        ['vpn', 'secrets', 'eap', index, 'id'],
        `duplicate EAP user "${id}" (also vpn.secrets.eap[${first}])`,
      );
  });

  // -------------------------------------------------------------------------------------------------- QoS
  const qosInterfaces = Object.keys(qosInterfacesRaw);
  const classesOn = (iface: string): string[] =>
    Object.entries(qosClassesRaw)
      .filter(([, value]) => {
        const target = rec(value).interface;
        return target === undefined || target === iface;
      })
      .map(([name]) => name);
  for (const [name, value] of Object.entries(qosClassesRaw)) {
    const path: PathSegment[] = ['qos', 'classes', name];
    const cls = rec(value);
    const target = cls.interface;
    if (typeof target === 'string' && !qosInterfaces.includes(target)) {
      const guess = closestMatch(target, qosInterfaces);
      check.add(
        [...path, 'interface'],
        `"${target}" is not a shaped interface${guess === undefined ? '' : ` (did you mean "${guess}"?)`} — ${
          qosInterfaces.length === 0
            ? 'define it under qos.interfaces'
            : `shaped interfaces: ${listNames(qosInterfaces)}`
        }`,
      );
    }
    const rate = rateOf(cls.rate);
    const ceil = rateOf(cls.ceil);
    if (rate !== undefined && ceil !== undefined && ceil < rate) {
      check.add(
        [...path, 'ceil'],
        `ceil ${formatRate(ceil)} is below rate ${formatRate(rate)}; ceil must be at least rate`,
      );
    }
  }
  for (const [iface, value] of Object.entries(qosInterfacesRaw)) {
    const path: PathSegment[] = ['qos', 'interfaces', iface];
    const shaped = rec(value);
    checkBoundInterface(iface, path);
    const members = classesOn(iface);
    const defaultClass = shaped.defaultClass;
    if (typeof defaultClass === 'string' && NAME_PATTERN.test(defaultClass)) {
      if (!qosClasses.has(defaultClass))
        check.add([...path, 'defaultClass'], qosClasses.unknown(defaultClass));
      else if (!members.includes(defaultClass)) {
        check.add(
          [...path, 'defaultClass'],
          `class "${defaultClass}" belongs to interface "${String(rec(qosClassesRaw[defaultClass]).interface)}", not "${iface}"`,
        );
      }
    }
    // Classes with a malformed rate are reported by the schema; the others may already be too much.
    const rates = members.flatMap((name) => {
      const rate = rateOf(rec(qosClassesRaw[name]).rate);
      return rate === undefined ? [] : [{ name, rate }];
    });
    const partial = rates.length < members.length ? 'at least ' : '';
    const total = rates.reduce((sum, { rate }) => sum + rate, 0);
    const breakdown = rates.map(({ name, rate }) => `${name} ${formatRate(rate)}`).join(', ');
    for (const field of ['egressRate', 'ingressRate'] as const) {
      const limit = rateOf(shaped[field]);
      if (limit !== undefined && total > limit) {
        check.add(
          [...path, field],
          `classes on "${iface}" guarantee ${partial}${formatRate(total)} in total (${breakdown}), more than ${field} ${formatRate(limit)}; lower their rates or raise ${field}`,
        );
      }
    }
  }

  return check.violations;
}

function withArticle(word: string): string {
  return /^[aeiou]/i.test(word) ? `an ${word}` : `a ${word}`;
}

function rateOf(value: unknown): number | undefined {
  return typeof value === 'string' || typeof value === 'number' ? parseRate(value) : undefined;
}
