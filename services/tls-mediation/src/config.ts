import { port } from '@moat/config';
import { baseConfigSchema, loadServiceConfig } from '@moat/service-kit';
import { type MutualTlsFiles, mutualTlsFiles } from '@moat/service-kit/grpc';
import { z } from 'zod';

/** Every MOAT_TLS_MEDIATION_* setting. */
export const tlsMediationConfigSchema = baseConfigSchema.extend({
  /** Health, readiness and metrics. */
  httpPort: port().default(9405),
  grpcHost: z.string().default('0.0.0.0'),
  grpcPort: port().default(50053),
  /** The CA certificate for clients to install (PEM, DER, instructions). */
  caHost: z.string().default('0.0.0.0'),
  caPort: port().default(9406),
  /** Where a generated CA is kept (key mode 0600); ignored when CA_CERT_FILE and CA_KEY_FILE are set. */
  dataDir: z.string().default('/var/lib/moat/tls-mediation'),
  /** An imported CA (in Kubernetes, a mounted Secret): certificate and PKCS#8 key, both or neither. */
  caCertFile: z.string().optional(),
  caKeyFile: z.string().optional(),
  /**
   * Mutual TLS on the gRPC port: its certificate and key, and the CA client certificates must chain
   * to (all three or none; none leaves the port plaintext, for loopback-only setups).
   */
  grpcTlsCertFile: z.string().optional(),
  grpcTlsKeyFile: z.string().optional(),
  grpcClientCaFile: z.string().optional(),
  /** Hours a leaf is valid. */
  leafHours: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 30)
    .default(72),
});
export type TlsMediationConfig = z.infer<typeof tlsMediationConfigSchema>;

export const loadTlsMediationConfig = (env = process.env): TlsMediationConfig =>
  loadServiceConfig('tls-mediation', tlsMediationConfigSchema, env) as TlsMediationConfig;

/** The gRPC port's mutual TLS files, or undefined for plaintext; a partial set is a ConfigError. */
export const grpcTlsFiles = (config: TlsMediationConfig): MutualTlsFiles | undefined =>
  mutualTlsFiles('tls-mediation', {
    caFile: { env: 'MOAT_TLS_MEDIATION_GRPC_CLIENT_CA_FILE', value: config.grpcClientCaFile },
    certFile: { env: 'MOAT_TLS_MEDIATION_GRPC_TLS_CERT_FILE', value: config.grpcTlsCertFile },
    keyFile: { env: 'MOAT_TLS_MEDIATION_GRPC_TLS_KEY_FILE', value: config.grpcTlsKeyFile },
  });
