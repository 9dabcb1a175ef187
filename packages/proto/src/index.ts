/** Generated gRPC contracts; see proto/ for the sources. */
export * as controlV1 from './gen/moat/control/v1/control.js';
export * as tlsV1 from './gen/moat/tls/v1/tls.js';
