export {
  type AppliedPolicy,
  announcePolicyChange,
  type FollowPolicyOptions,
  followPolicy,
  type PolicyChangedMessage,
  type PolicyFollower,
  type PolicyFollowerState,
} from './follow.js';
export * from './schema-exports.js';
export {
  type AddressRange,
  addressInRanges,
  type ExpandedAddresses,
  expandAddresses,
  expandServices,
  ipFamily,
  isScheduleActive,
  qosClassIds,
  servicesCover,
  stripMappedV4,
} from './semantics.js';
export {
  type ApplyMeta,
  type ApplyResult,
  diffPolicies,
  type PolicyChange,
  PolicyNotFoundError,
  type PolicyRecord,
  PolicyStore,
  type PolicyVersionInfo,
} from './store.js';
