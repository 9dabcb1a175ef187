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
  policyVersion: 'moat.policy.version',
  service: 'moat.service',
  subject: 'messaging.destination.name',
} as const;
export type MoatAttribute = (typeof attr)[keyof typeof attr];
