/** The public API of the policy model: schema, types, validation, JSON Schema. */

export { policyJsonSchema } from './json-schema.js';
export { ANY } from './schema/common.js';
export {
  type DestinationNatRule,
  destinationNatRuleSchema,
  type Nat,
  natSchema,
  type SourceNatRule,
  type SourceNatTranslation,
  sourceNatRuleSchema,
} from './schema/nat.js';
export {
  type AddressKind,
  formatIp,
  type IpFamily,
  isAddressLiteral,
  type ParsedAddress,
  type PortRange,
  parseAddress,
  parseIp,
} from './schema/net.js';
export {
  type AddressObject,
  type AddressSet,
  addressObjectSchema,
  addressSetSchema,
  DAYS,
  type Day,
  type ExtensionList,
  extensionListSchema,
  isUrlPattern,
  type MimeList,
  mimeListSchema,
  type Objects,
  objectsSchema,
  PREDEFINED_SERVICE_SETS,
  PREDEFINED_SERVICES,
  PROTOCOLS,
  type Schedule,
  type ScheduleWindow,
  type Service,
  type ServiceSet,
  scheduleSchema,
  serviceSchema,
  serviceSetSchema,
  type UrlCategory,
  type UrlPatternList,
  urlCategorySchema,
  urlPatternListSchema,
} from './schema/objects.js';
export {
  POLICY_API_VERSION,
  POLICY_KIND,
  type Policy,
  type PolicyInput,
  type PolicyMetadata,
  policyMetadataSchema,
  policySchema,
} from './schema/policy.js';
export {
  type AntivirusProfile,
  antivirusProfileSchema,
  type ContentFilteringProfile,
  contentFilteringProfileSchema,
  PROFILE_KINDS,
  type ProfileKind,
  type Profiles,
  profilesSchema,
  type TlsInspectionProfile,
  tlsInspectionProfileSchema,
  type WafProfile,
  type WafRuleExclusion,
  type WebFilteringProfile,
  wafProfileSchema,
  webFilteringProfileSchema,
} from './schema/profiles.js';
export { type Qos, type QosClass, type QosInterface, qosClassSchema, qosSchema } from './schema/qos.js';
export {
  type SecurityRule,
  type SecurityRules,
  securityRuleSchema,
  securityRulesSchema,
} from './schema/security-rules.js';
export { formatRate, formatSize, parseDuration, parseRate, parseSize } from './schema/units.js';
export {
  UTM_PROTOCOL_PROFILES,
  type UtmPolicies,
  type UtmPolicy,
  type UtmProtocol,
  utmPoliciesSchema,
  utmPolicySchema,
} from './schema/utm-policies.js';
export {
  DEFAULT_ESP_PROPOSALS,
  DEFAULT_IKE_PROPOSALS,
  type EapSecret,
  type PskSecret,
  type SecretRef,
  type Vpn,
  type VpnChild,
  type VpnConnection,
  type VpnPool,
  vpnConnectionSchema,
  vpnSchema,
  WEAK_IPSEC_ALGORITHMS,
} from './schema/vpn.js';
export { type Zone, type Zones, zoneSchema, zonesSchema } from './schema/zones.js';
export {
  canonicalPolicyJson,
  formatViolations,
  type PolicyValidation,
  PolicyValidationError,
  type PolicyViolation,
  parsePolicyText,
  validatePolicy,
} from './validate.js';
