/**
 * The policy as ONE nftables table (family inet, named `moat`), as a script that `nft -f` runs as a
 * single transaction: create the table if missing, delete it, define it again. Either all of it
 * applies or nothing changes, and no other table is ever touched.
 *
 * Chains, in packet order:
 * - filter_prerouting: anti-spoofing (reverse-path check on zone interfaces).
 * - nat_prerouting: port forwards (DNAT, with hairpin), then transparent-proxy interception
 *   (redirect of web traffic that a permit rule with a UTM policy matches).
 * - filter_input: traffic to the gateway itself, by each zone's host-inbound services.
 * - filter_forward: the security rules in order, stateful, default deny.
 * - nat_postrouting: source NAT rules in order, and the masquerade that makes hairpin work.
 *
 * Every rule carries `comment "rule <name>"`: a policy rule's name, or a built-in one (default,
 * input, invalid-state, anti-spoofing). Counters are read back by it.
 */
import { expandServices, type Policy, qosClassIds, type SecurityRule, servicesCover } from '@moat/policy';
import {
  AddressCompiler,
  type AddressFileCache,
  type AddressList,
  addElementsCommand,
  type NamedAddressSet,
  namedSetDeclaration,
  type ReadFile,
} from './addresses.js';
import { type FlowMatch, flowMatches, type HookContext, type ZoneMatch, zoneMatches } from './flows.js';
import { serviceMatches } from './services.js';
import { anonymousSet, familyKeyword, quote } from './syntax.js';

export const DEFAULT_TABLE = 'moat';

/** Prefix of every log line the firewall writes for a denied flow; the rule name follows. */
export const DENY_LOG_PREFIX = 'moat-deny';

export interface InterceptionPorts {
  /** The proxy's transparent HTTP port on the gateway (tcp/80 from clients is redirected to it). */
  httpPort: number;
  /** The proxy's intercepted-TLS port (tcp/443). */
  tlsPort: number;
}

export interface RenderOptions {
  table?: string;
  /** nflog group denied flows are logged to (the firewall service reads it). */
  logGroup?: number;
  /** Denied-flow log lines per second, at most (a flood must not flood the log). */
  logRatePerSecond?: number;
  /** Redirect web traffic to the proxy; omit when no proxy runs on the gateway. */
  interception?: InterceptionPorts;
  /** Reads address-set files (large blocklists). */
  readFile?: ReadFile;
  /** Parsed address files kept between renders (an unchanged file is not parsed again). */
  fileCache?: AddressFileCache;
}

export interface RenderedRuleset {
  table: string;
  /**
   * The whole table from scratch: create if missing, delete, define, fill the sets. Used for the
   * first apply of a process and for checks; updateScript() is the cheaper way after that.
   */
  script: string;
  /** The chains and their rules as one `table inet <name> { … }` block, without the sets. */
  chains: string;
  chainNames: string[];
  namedSets: NamedAddressSet[];
  /** nft rules in the table (a policy rule can need several). */
  ruleCount: number;
  sets: { name: string; file: string; elements: number }[];
  /** What the policy asks for that this ruleset cannot do, said plainly (also logged). */
  warnings: string[];
}

/** What Moat's table holds in the kernel: its chains, and each named set with its content digest. */
export interface TableState {
  chains: string[];
  sets: ReadonlyMap<string, string | undefined>;
}

/**
 * The script that turns the table as it is (`current`) into this ruleset, in one transaction: every
 * rule is replaced, but a set whose content did not change is kept as it is, so a policy change does
 * not reload a million-entry blocklist. (Deleting and recreating a big set in one transaction is
 * also what the kernel does slowest of all.)
 */
export function updateScript(rendered: RenderedRuleset, current: TableState): string {
  const t = `inet ${rendered.table}`;
  const wanted = new Map(rendered.namedSets.map((set) => [set.name, set]));
  const lines = [`flush table ${t}`];
  // chains this version no longer defines (an emptied base chain would still apply its policy)
  for (const name of current.chains)
    if (!rendered.chainNames.includes(name)) lines.push(`delete chain ${t} ${name}`);
  for (const name of current.sets.keys()) if (!wanted.has(name)) lines.push(`delete set ${t} ${name}`);
  const applied = current.sets;
  let fills = '';
  for (const set of rendered.namedSets) {
    if (applied.has(set.name) && applied.get(set.name) === set.digest) continue;
    if (applied.has(set.name)) fills += `flush set ${t} ${set.name}\n`;
    fills += addElementsCommand('inet', rendered.table, set);
  }
  return `${lines.join('\n')}\n${rendered.chains}${fills}`;
}

/** The part of the conntrack mark that holds a flow's QoS class; the rest is left to other users. */
const QOS_MARK_MASK = 0xffff;
const hex = (n: number) => `0x${n.toString(16)}`;

/** Classifies a flow: the class into the conntrack mark (for later packets) and the packet's priority. */
function qosMarkStatement(minor: number): string {
  const others = ~QOS_MARK_MASK >>> 0;
  return `ct mark set ct mark and ${hex(others)} or ${hex(minor)} meta priority set 1:${minor.toString(16)}`;
}

const noFiles: ReadFile = (path) => {
  throw new Error(`no file reader given (needed for ${path})`);
};

/** Renders the policy. Throws AddressFileError when an address file cannot be read or parsed. */
export function renderRuleset(policy: Policy, options: RenderOptions = {}): RenderedRuleset {
  return new RulesetBuilder(policy, options).build();
}

class RulesetBuilder {
  private readonly table: string;
  private readonly addresses: AddressCompiler;
  /** The VPN pools' addresses, which zones without interfaces match (undefined: no pools). */
  private readonly vpnPools: AddressList | undefined;
  private readonly warnings: string[] = [];
  private readonly qosIds: Map<string, number>;
  private readonly logGroup: number;
  private readonly logRate: number;
  private ruleCount = 0;

  constructor(
    private readonly policy: Policy,
    private readonly options: RenderOptions,
  ) {
    this.table = options.table ?? DEFAULT_TABLE;
    this.addresses = new AddressCompiler(policy, options.readFile ?? noFiles, options.fileCache);
    const pools = Object.values(policy.vpn?.pools ?? {}).map((pool) => pool.addresses);
    this.vpnPools = pools.length > 0 ? this.addresses.compileLiterals(pools) : undefined;
    this.qosIds = qosClassIds(policy);
    this.logGroup = options.logGroup ?? 1;
    this.logRate = options.logRatePerSecond ?? 50;
  }

  build(): RenderedRuleset {
    const chainNames: string[] = [];
    const chain = (name: string, hook: string, rules: string[]) => {
      chainNames.push(name);
      return this.chain(name, hook, rules);
    };
    const chains = [
      chain('filter_prerouting', 'filter hook prerouting priority raw; policy accept', this.antiSpoofing()),
      chain('nat_prerouting', 'nat hook prerouting priority dstnat; policy accept', [
        ...this.portForwards(),
        ...this.interception(),
      ]),
      chain('filter_input', 'filter hook input priority filter; policy drop', this.input()),
      chain('filter_forward', 'filter hook forward priority filter; policy drop', this.forward()),
      chain('nat_postrouting', 'nat hook postrouting priority srcnat; policy accept', [
        ...this.sourceNat(),
        ...this.hairpinMasquerade(),
      ]),
    ];
    const sets: NamedAddressSet[] = this.addresses.namedSets();
    const t = this.table;
    const declarations = sets.map(namedSetDeclaration).join('');
    const script = `table inet ${t}
delete table inet ${t}
table inet ${t} {
${declarations}${chains.join('')}}
${sets.map((set) => addElementsCommand('inet', t, set)).join('')}`;
    return {
      table: t,
      script,
      chains: `table inet ${t} {\n${declarations}${chains.join('')}}\n`,
      chainNames,
      namedSets: sets,
      ruleCount: this.ruleCount,
      sets: sets.map((set) => ({ name: set.name, file: set.file, elements: set.elements.length })),
      warnings: this.warnings,
    };
  }

  private chain(name: string, hook: string, rules: string[]): string {
    this.ruleCount += rules.length;
    const body = rules.map((rule) => `    ${rule}\n`).join('');
    return `  chain ${name} {\n    type ${hook};\n${body}  }\n`;
  }

  /** Every zone-bound interface. */
  private zoneInterfaces(): string[] {
    return [...new Set(Object.values(this.policy.zones).flatMap((zone) => zone.interfaces))].sort();
  }

  // ---------------------------------------------------------------------------------- anti-spoofing

  private antiSpoofing(): string[] {
    const interfaces = this.zoneInterfaces();
    if (interfaces.length === 0) return [];
    const on = `iifname ${anonymousSet(interfaces.map(quote))}`;
    return [
      // DHCP clients ask before they have an address: their source has no route back
      `${on} ip saddr 0.0.0.0 udp sport 68 udp dport 67 accept`,
      // no route back to the source through the interface it came in by: a spoofed source
      `${on} fib saddr . iif oif missing counter drop ${this.comment('anti-spoofing')}`,
    ];
  }

  // --------------------------------------------------------------------------------------- the rules

  private enabledRules(): SecurityRule[] {
    return this.policy.securityRules.filter((rule) => !rule.disabled);
  }

  private flowsOf(
    rule: {
      name: string;
      fromZones: string[];
      toZones?: string[];
      source: string[];
      destination: string[];
    },
    services: ReturnType<typeof serviceMatches>,
    context: HookContext,
  ): FlowMatch[] {
    const source = this.compileAddresses(rule.name, rule.source);
    const destination = this.compileAddresses(rule.name, rule.destination);
    const from = this.zones(rule.name, rule.fromZones);
    const to = rule.toZones ? this.zones(rule.name, rule.toZones) : undefined;
    return flowMatches({ from, ...(to ? { to } : {}), source, destination, services }, context);
  }

  private compileAddresses(ruleName: string, refs: string[]): AddressList {
    const list = this.addresses.compile(refs);
    if (list.dnsNames.length > 0) {
      this.warn(
        `rule ${ruleName}: DNS-name addresses (${list.dnsNames.join(', ')}) are not resolved by the firewall yet; the rule matches its other addresses only`,
      );
    }
    return list;
  }

  private zones(ruleName: string, zones: string[]): ZoneMatch[] {
    const matches = zoneMatches(this.policy, zones, this.vpnPools);
    if (matches.length === 0) {
      this.warn(
        `rule ${ruleName}: zones ${zones.join(', ')} have no interfaces and the policy has no VPN pools, so the rule can never match`,
      );
    }
    return matches;
  }

  private warn(message: string): void {
    if (!this.warnings.includes(message)) this.warnings.push(message);
  }

  private comment(ruleName: string): string {
    return `comment ${quote(`rule ${ruleName}`)}`;
  }

  /** A limited log statement for denied flows, in its own rule so the limit does not gate the drop. */
  private logDenied(match: string, ruleName: string): string {
    const prefix = quote(`${DENY_LOG_PREFIX} ${ruleName}: `.slice(0, 127));
    return `${match}${match ? ' ' : ''}limit rate ${this.logRate}/second burst ${this.logRate * 2} packets log prefix ${prefix} group ${this.logGroup}`;
  }

  private forward(): string[] {
    const rules = [
      ...this.restoreQosClass(),
      'ct state established,related accept',
      `ct state invalid counter drop ${this.comment('invalid-state')}`,
    ];
    for (const rule of this.enabledRules()) {
      const services = serviceMatches(expandServices(this.policy, rule.service));
      for (const flow of this.flowsOf(rule, services, 'forward')) rules.push(...this.verdicts(rule, flow));
    }
    rules.push(this.logDenied('', 'default'));
    rules.push(`counter drop ${this.comment('default')}`);
    return rules;
  }

  /**
   * Rules run on a flow's first packet only, so the class is kept in the low 16 bits of the
   * conntrack mark and every later packet of the flow, in both directions, gets it back.
   */
  private restoreQosClass(): string[] {
    if (this.qosIds.size === 0) return [];
    const entries = [...this.qosIds.values()].map((id) => `0x${id.toString(16)} : 1:${id.toString(16)}`);
    return [
      `ct state established,related meta priority set ct mark and ${hex(QOS_MARK_MASK)} map { ${entries.join(', ')} } accept`,
    ];
  }

  private verdicts(rule: SecurityRule, flow: FlowMatch): string[] {
    const match = flow.text ? `${flow.text} ` : '';
    const counter = rule.counter ? 'counter ' : '';
    const comment = this.comment(rule.name);
    if (rule.action === 'permit') {
      const out: string[] = [];
      if (rule.rateLimit) {
        const burst = rule.rateLimit.burst === undefined ? '' : ` burst ${rule.rateLimit.burst} packets`;
        out.push(`${match}limit rate over ${rule.rateLimit.rate}${burst} counter drop ${comment}`);
      }
      const qos = rule.qosClass ? this.qosIds.get(rule.qosClass) : undefined;
      const mark = qos === undefined ? '' : `${qosMarkStatement(qos)} `;
      out.push(`${match}${counter}${mark}accept ${comment}`);
      return out;
    }
    const out: string[] = [];
    if (rule.log?.sessionInit) out.push(this.logDenied(flow.text, rule.name));
    const verdict =
      rule.action === 'deny' ? 'drop' : flow.protocol === 'tcp' ? 'reject with tcp reset' : 'reject';
    out.push(`${match}${counter}${verdict} ${comment}`);
    return out;
  }

  // ------------------------------------------------------------------------------ the gateway itself

  private input(): string[] {
    const rules = [
      'iif lo accept',
      'ct state established,related accept',
      `ct state invalid counter drop ${this.comment('invalid-state')}`,
      // connections the prerouting chain redirected to a local service (the proxy) were permitted there
      'ct status dnat accept comment "redirected to a local service"',
      'meta l4proto ipv6-icmp icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert } accept comment "IPv6 neighbour discovery"',
    ];
    for (const [zone, definition] of Object.entries(this.policy.zones)) {
      if (definition.hostInboundServices.length === 0) continue;
      const services = serviceMatches(expandServices(this.policy, definition.hostInboundServices));
      const name = `host-inbound ${zone}`;
      const flows = this.flowsOf(
        { name, fromZones: [zone], source: ['any'], destination: ['any'] },
        services,
        'input',
      );
      for (const flow of flows) rules.push(`${flow.text} accept ${this.comment(name)}`);
    }
    rules.push(this.logDenied('', 'input'));
    rules.push(`counter drop ${this.comment('input')}`);
    return rules;
  }

  // --------------------------------------------------------------------------------------------- NAT

  private portForwards(): string[] {
    const rules: string[] = [];
    for (const forward of this.policy.nat.destination.filter((rule) => !rule.disabled)) {
      const services = serviceMatches(expandServices(this.policy, [forward.service]));
      const server = this.resolveAddress(forward.translateTo.address);
      const publicAddress = forward.destinationAddress
        ? this.resolveAddress(forward.destinationAddress)
        : undefined;
      const internalZones = this.internalZones(forward.fromZones);
      const entries: [string, string[]][] = [[forward.name, forward.fromZones]];
      if (forward.hairpin && internalZones.length > 0)
        entries.push([`${forward.name} (hairpin)`, internalZones]);
      for (const [name, fromZones] of entries) {
        const flows = this.flowsOf(
          { name, fromZones, source: forward.source, destination: ['any'] },
          services,
          'prerouting',
        );
        // the translation is to the server's family: flows of the other family are not forwarded
        const family = server.family;
        if (publicAddress && publicAddress.family !== family) continue;
        const daddr = publicAddress
          ? `${familyKeyword(family)} daddr ${publicAddress.text}`
          : 'fib daddr type local';
        const port = forward.translateTo.port;
        const to =
          port === undefined
            ? server.text
            : family === 6
              ? `[${server.text}]:${port}`
              : `${server.text}:${port}`;
        for (const flow of flows) {
          if (flow.family !== undefined && flow.family !== family) continue;
          rules.push(
            `meta nfproto ${family === 4 ? 'ipv4' : 'ipv6'} ${flow.text} ${daddr} dnat ${familyKeyword(family)} to ${to} ${this.comment(name)}`,
          );
        }
      }
    }
    return rules;
  }

  /** The zones a port forward's clients may also sit in (hairpin): every zone it does not come from. */
  private internalZones(fromZones: string[]): string[] {
    return Object.keys(this.policy.zones).filter((zone) => !fromZones.includes(zone));
  }

  /** The masquerade that sends a hairpinned connection's replies back through the gateway. */
  private hairpinMasquerade(): string[] {
    const rules: string[] = [];
    for (const forward of this.policy.nat.destination.filter((rule) => !rule.disabled && rule.hairpin)) {
      const server = this.resolveAddress(forward.translateTo.address);
      const interfaces = this.internalZones(forward.fromZones).flatMap(
        (zone) => this.policy.zones[zone]?.interfaces ?? [],
      );
      if (interfaces.length === 0) continue;
      rules.push(
        `iifname ${anonymousSet(interfaces.map(quote))} ct status dnat ${familyKeyword(server.family)} daddr ${server.text} masquerade ${this.comment(`${forward.name} (hairpin)`)}`,
      );
    }
    return rules;
  }

  private sourceNat(): string[] {
    const rules: string[] = [];
    for (const snat of this.policy.nat.source.filter((rule) => !rule.disabled)) {
      const services = serviceMatches(expandServices(this.policy, snat.service));
      const flows = this.flowsOf(
        {
          name: snat.name,
          fromZones: snat.fromZones,
          ...(snat.toZones ? { toZones: snat.toZones } : {}),
          source: snat.source,
          destination: snat.destination,
        },
        services,
        'postrouting',
      );
      const egress = snat.egressInterface ? ` oifname ${quote(snat.egressInterface)}` : '';
      const comment = this.comment(snat.name);
      const translation = snat.translation;
      for (const flow of flows) {
        const match = `${flow.text}${egress}`.trim();
        const prefix = match ? `${match} ` : '';
        if (translation === 'masquerade') rules.push(`${prefix}masquerade ${comment}`);
        else if (translation === 'none') rules.push(`${prefix}accept ${comment}`);
        else {
          const pool = this.resolveAddress(translation.pool);
          if (flow.family !== undefined && flow.family !== pool.family) continue;
          const persistent = translation.persistent ? ' persistent' : '';
          const nfproto = flow.family ? '' : `meta nfproto ${pool.family === 4 ? 'ipv4' : 'ipv6'} `;
          rules.push(
            `${nfproto}${prefix}snat ${familyKeyword(pool.family)} to ${pool.text}${persistent} ${comment}`,
          );
        }
      }
    }
    return rules;
  }

  /** A single address, prefix or range: a literal, or the name of an address object. */
  private resolveAddress(ref: string): { family: 4 | 6; text: string } {
    const literal = this.policy.objects.addresses[ref]?.address ?? ref;
    const list = this.addresses.compileLiterals([literal]);
    for (const family of [4, 6] as const) {
      const element = list.byFamily[family].elements[0];
      if (element !== undefined) return { family, text: element };
    }
    throw new Error(`${ref} is not an address the firewall can translate to`);
  }

  // ------------------------------------------------------------------------------------ interception

  /**
   * Web traffic that a permit rule with a UTM policy for http (https) matches goes to the proxy. The
   * first rule that matches a flow decides, as in the forward chain: a rule that matches but does
   * not inspect ends the chain for that flow (accept here means "no redirect").
   */
  private interception(): string[] {
    const ports = this.options.interception;
    if (!ports) return [];
    const rules: string[] = [];
    const enabled = this.enabledRules();
    const lastInspecting = enabled.findLastIndex(
      (rule) => this.inspects(rule, 'http') || this.inspects(rule, 'https'),
    );
    for (const rule of enabled.slice(0, lastInspecting + 1)) {
      const services = expandServices(this.policy, rule.service);
      for (const [protocol, port, target] of [
        ['http', 80, ports.httpPort],
        ['https', 443, ports.tlsPort],
      ] as const) {
        if (!servicesCover(services, 'tcp', port)) continue;
        const flows = this.flowsOf(rule, [{ text: `tcp dport ${port}`, protocol: 'tcp' }], 'prerouting');
        const inspected = this.inspects(rule, protocol);
        if (inspected && rule.qosClass) {
          this.warn(
            `rule ${rule.name}: ${protocol} it sends to the proxy is re-originated by the gateway, so its qosClass ${rule.qosClass} does not apply to it (it is shaped in the default class); its other traffic is classified`,
          );
        }
        const verdict = inspected ? `redirect to :${target}` : 'accept';
        for (const flow of flows) rules.push(`${flow.text} ${verdict} ${this.comment(rule.name)}`);
      }
    }
    return rules;
  }

  private inspects(rule: SecurityRule, protocol: 'http' | 'https'): boolean {
    if (rule.action !== 'permit' || !rule.utmPolicy) return false;
    return this.policy.utmPolicies[rule.utmPolicy]?.[protocol] !== undefined;
  }
}
