/**
 * The steps every request and tunnel goes through, whatever way it arrived: find the upstream
 * address (checking intercepted requests against the address the client really dialled), place
 * both ends in zones, match the security rules, and run URL filtering.
 */
import type { Logger } from '@moat/log';
import { attr } from '@moat/telemetry';
import type { UrlCategorizer } from '@moat/urlfilter';
import type { Span } from '@opentelemetry/api';
import type { AntivirusStage } from './antivirus/stage.js';
import type { ProxyConfig } from './config.js';
import type { Target } from './http/target.js';
import type { ProxyMetrics } from './observe/metrics.js';
import type { Recorder } from './observe/recorder.js';
import { startSpan } from './observe/tracer.js';
import type { Transaction } from './observe/transaction.js';
import type { Inspection, ProxyPolicy } from './policy/compile.js';
import { type Flow, filterUrl, matchRule, ruleVerdict, type Verdict } from './policy/decide.js';
import type { RouteTable } from './policy/routes.js';
import type { CertificateSource } from './tls/certificates.js';
import type { UpstreamTrust } from './tls/upstream-tls.js';
import { type DnsCache, DnsError } from './upstream/dns.js';
import type { Upstream } from './upstream/upstream.js';

export interface OriginalDestination {
  address: string;
  port: number;
}

export interface ProxyDeps {
  config: ProxyConfig;
  /** Scanning bodies through the av-scanner workers, per the antivirus profile. */
  antivirus: AntivirusStage;
  log: Logger;
  metrics: ProxyMetrics;
  recorder: Recorder;
  dns: DnsCache;
  upstream: Upstream;
  routes: RouteTable;
  /** TLS mediation: leaf certificates from tls-mediation, and the trust for validating upstreams. */
  tls: { certificates: CertificateSource; trust: UpstreamTrust };
  /** The compiled policy of the version in force; undefined until the first one is applied. */
  policy(): ProxyPolicy | undefined;
  categorizer(): UrlCategorizer;
}

export interface Resolution {
  flow: Flow;
  /** Set when the upstream name could not be resolved (the decision still runs: a block wins). */
  dnsError?: DnsError;
}

/** For a name that does not resolve, the zone is the one of the default route. */
const UNRESOLVED_PLACEHOLDER = '0.0.0.0';

export class HostForgeryError extends Error {
  override name = 'HostForgeryError';
}

/**
 * Where the request goes. Explicit requests go to the first address of the name; intercepted ones
 * go where the client was going, and only if the Host header names that address (host-header
 * forgery would otherwise let a client reach one site while being filtered as another).
 */
export function resolveFlow(
  deps: ProxyDeps,
  target: Target,
  client: { ip: string; port: number },
  original?: OriginalDestination,
): Resolution | Promise<Resolution> {
  const known = deps.dns.cached(target.host);
  if (known !== undefined) return flowFrom(deps, target, client, original, known);
  return deps.dns.addresses(target.host).then(
    (addresses) => flowFrom(deps, target, client, original, addresses),
    (err: unknown) => {
      if (!(err instanceof DnsError)) throw err;
      return flowFrom(deps, target, client, original, err);
    },
  );
}

function flowFrom(
  deps: ProxyDeps,
  target: Target,
  client: { ip: string; port: number },
  original: OriginalDestination | undefined,
  answer: string[] | DnsError,
): Resolution {
  const zoneOf = (ip: string, fallback: string | undefined) => {
    const iface = deps.routes.interfaceFor(ip);
    const policy = deps.policy();
    return (iface && policy?.zoneOfInterface.get(iface)) ?? fallback;
  };
  const dnsError = answer instanceof DnsError ? answer : undefined;
  const addresses = answer instanceof DnsError ? [] : answer;
  if (original) {
    if (dnsError) {
      throw new HostForgeryError(
        `The Host header names ${target.host}, which cannot be resolved to confirm it is ${original.address}.`,
      );
    }
    if (!addresses.includes(original.address)) {
      throw new HostForgeryError(
        `The Host header names ${target.host}, which does not resolve to ${original.address}, the address the client connected to.`,
      );
    }
  }
  const clientZone = zoneOf(client.ip, deps.config.defaultClientZone);
  const serverIp = original?.address ?? addresses[0] ?? '';
  const serverZone = zoneOf(serverIp || UNRESOLVED_PLACEHOLDER, deps.config.defaultUpstreamZone);
  const flow: Flow = {
    clientIp: client.ip,
    host: target.host,
    port: target.port,
    serverIp,
    ...(clientZone ? { clientZone } : {}),
    ...(serverZone ? { serverZone } : {}),
  };
  return dnsError ? { flow, dnsError } : { flow };
}

export interface Decision {
  verdict: Verdict;
  inspection?: Inspection;
  policyVersion?: number;
}

const NO_POLICY: Verdict = {
  action: 'block',
  engine: 'firewall',
  tag: 'RT_FLOW_SESSION_DENY',
  status: 503,
  reason:
    'The proxy has no policy yet, so it lets nothing through. Apply one with `moatctl apply -f policy.yaml`.',
};

/**
 * Security rules, then (for a permitted flow) the rule's URL filtering; recorded as a child span of
 * the request. The parent is passed explicitly: no async context is needed on this hot path.
 */
export function decide(
  deps: ProxyDeps,
  flow: Flow,
  target: Target,
  protocol: 'http' | 'https',
  parent: Span,
): Decision {
  const span = startSpan('policy.decide', {}, parent);
  try {
    const policy = deps.policy();
    if (!policy) return { verdict: NO_POLICY };
    span.setAttribute(attr.policyVersion, policy.version);
    const rule = matchRule(policy, flow, new Date());
    const denied = ruleVerdict(rule);
    const inspection = rule?.[protocol];
    let verdict: Verdict = denied ?? {
      action: 'allow',
      engine: 'firewall',
      tag: 'RT_FLOW_SESSION_CREATE',
      status: 200,
      reason: `Permitted by security rule "${rule?.name}".`,
    };
    if (!denied && inspection?.webFilter) {
      verdict = filterUrl(inspection.webFilter, target, deps.categorizer());
    }
    if (rule) verdict = { ...verdict, rule: rule.name };
    if (inspection) verdict = { ...verdict, utmPolicy: inspection.utmPolicy };
    annotate(span, verdict);
    return {
      verdict,
      policyVersion: policy.version,
      ...(inspection && !denied ? { inspection } : {}),
    };
  } finally {
    span.end();
  }
}

/**
 * decide(), with the facts recorded on the transaction: where the flow goes (address, zones) and
 * what was decided under which policy version. The one place every entry point goes through.
 */
export function decideAndRecord(
  deps: ProxyDeps,
  tx: Transaction,
  flow: Flow,
  target: Target,
  protocol: 'http' | 'https',
  span: Span,
): Decision {
  tx.client.zone = flow.clientZone;
  tx.server = {
    ...tx.server,
    ...(flow.serverIp ? { ip: flow.serverIp } : {}),
    ...(flow.serverZone ? { zone: flow.serverZone } : {}),
  };
  const decision = decide(deps, flow, target, protocol, span);
  tx.verdict = decision.verdict;
  if (decision.policyVersion !== undefined) tx.policyVersion = decision.policyVersion;
  return decision;
}

/** Writes a verdict onto a span with the attribute names of the contract. */
export function annotate(
  span: { setAttribute(key: string, value: string | number): unknown },
  verdict: Verdict,
): void {
  span.setAttribute(attr.verdict, verdict.action);
  span.setAttribute(attr.engine, verdict.engine);
  if (verdict.rule) span.setAttribute(attr.ruleId, verdict.rule);
  if (verdict.category) span.setAttribute(attr.category, verdict.category);
  if (verdict.pattern) span.setAttribute(attr.urlPattern, verdict.pattern);
  if (verdict.utmPolicy) span.setAttribute(attr.utmPolicy, verdict.utmPolicy);
  if (verdict.profile) span.setAttribute(attr.profile, verdict.profile);
  if (verdict.signature) span.setAttribute(attr.signature, verdict.signature);
  if (verdict.action === 'block') span.setAttribute(attr.reason, verdict.reason);
}
