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
  service: 'moat.service',
  subject: 'messaging.destination.name',
} as const;
export type MoatAttribute = (typeof attr)[keyof typeof attr];
