/**
 * The span attribute names Moat emits. They are a contract (dashboards and the block page
 * read them): add a name here before using it anywhere.
 */
export const attr = {
  verdict: 'moat.verdict',
  engine: 'moat.engine',
  ruleId: 'moat.rule_id',
  category: 'moat.category',
  signature: 'moat.signature',
  reason: 'moat.reason',
  urlPattern: 'moat.url_pattern',
  utmPolicy: 'moat.utm_policy',
  profile: 'moat.profile',
  policyVersion: 'moat.policy.version',
  proxyMode: 'moat.proxy.mode',
  clientZone: 'moat.zone.client',
  serverZone: 'moat.zone.server',
  tlsSni: 'moat.tls.sni',
  /** bump, splice or block: what TLS mediation did with a connection. */
  tlsAction: 'moat.tls.action',
  /** Where a bumped connection's certificate came from: proxy, memory, redis or issued. */
  tlsCertificateSource: 'moat.tls.certificate_source',
  /** Why an upstream's TLS was refused (expired, wrong-host, old-protocol, …). */
  tlsProblem: 'moat.tls.problem',
  /** clean, infected or error: an antivirus scan's outcome. */
  avResult: 'moat.av.result',
  /** The verdict came from the cache (no scan). */
  avCached: 'moat.av.cached',
  /** The av-scanner instance that answered ("proxy": the proxy's own cache lookup). */
  avWorker: 'moat.av.worker',
  avSignatureVersion: 'moat.av.signature_version',
  contentSha256: 'moat.content.sha256',
  contentBytes: 'moat.content.bytes',
  service: 'moat.service',
  subject: 'messaging.destination.name',
} as const;
export type MoatAttribute = (typeof attr)[keyof typeof attr];
