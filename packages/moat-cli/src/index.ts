/** Public surface of @moat/cli for other packages' lab tests and tooling. */
export { CliError } from './errors.js';
export { BAD_TLS_VARIANTS, type BadTlsVariant, badTlsHost } from './lab/bad-tls.js';
export type { LabStatus } from './lab/lab.js';
export { curlFrom, labDown, labStatus, labUp, probeInNamespace } from './lab/lab.js';
export {
  addNamespace,
  addVethPair,
  deleteNamespace,
  ensureAddress,
  ensureRoute,
  execInNamespaceArgv,
  listNamespaces,
  setLinkUp,
  setNamespaceSysctl,
} from './lab/netns.js';
export { LAB_PORTS, ORIGIN_LISTEN, ORIGIN_TLS_LISTEN } from './lab/processes.js';
export { LAB_CA_CERT, LAB_STATE_DIR, labPaths, readState } from './lab/state.js';
export {
  GW_INTERFACES,
  LAB_ADDRESSES,
  LAB_HOSTNAMES,
  LAB_NAMESPACES,
  LAB_PREFIXES,
  type LabNamespace,
  type LabRole,
} from './lab/topology.js';
export { createProgram } from './program.js';
export { SERVICES, type ServiceContext, type ServiceDefinition } from './services.js';
