/**
 * Leaf certificates for bumped connections, from tls-mediation over gRPC (the proxy never sees the
 * CA's key), kept here as ready-to-use TLS contexts: a warm name costs no call at all. Concurrent
 * handshakes for the same names share one call.
 */

import { createSecureContext, type SecureContext } from 'node:tls';
import {
  type ChannelCredentials,
  credentials,
  Metadata as GrpcMetadata,
  type Metadata,
  status,
} from '@grpc/grpc-js';
import { tlsV1 as pb } from '@moat/proto';
import { attr, injectIntoGrpcMetadata } from '@moat/telemetry';
import { ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { startSpan } from '../observe/tracer.js';

/** TLS 1.2 suites offered to clients: the minted leaves are ECDSA, and only AEAD suites are offered. */
export const CLIENT_TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
].join(':');

export type ClientTlsVersion = 'TLSv1.2' | 'TLSv1.3';

export interface LeafRequest {
  sni: string;
  dnsNames: readonly string[];
  ipAddresses: readonly string[];
  minVersion: ClientTlsVersion;
}

export interface ClientLeaf {
  context: SecureContext;
  notAfter: number;
  /** proxy = this process's cache; memory, redis or issued = what tls-mediation answered from. */
  source: 'proxy' | 'memory' | 'redis' | 'issued';
}

/** tls-mediation could not give a certificate: the connection cannot be bumped, so it is refused. */
export class CertificateUnavailableError extends Error {
  override name = 'CertificateUnavailableError';
}

/** Renew a cached leaf this long before it expires. */
const RENEW_BEFORE_MS = 60 * 60 * 1000;
const MAX_ENTRIES = 10_000;

export interface CertificateSourceOptions {
  /** host:port of tls-mediation's gRPC port. */
  address: string;
  deadlineMs: number;
  /** Mutual TLS to tls-mediation; plaintext without. */
  credentials?: ChannelCredentials;
}

export class CertificateSource {
  private readonly client: InstanceType<typeof pb.TlsMediationServiceClient>;
  private readonly cache = new Map<string, ClientLeaf>();
  private readonly pending = new Map<string, Promise<ClientLeaf>>();

  constructor(private readonly options: CertificateSourceOptions) {
    this.client = new pb.TlsMediationServiceClient(
      options.address,
      options.credentials ?? credentials.createInsecure(),
      {
        'grpc.keepalive_time_ms': 30_000,
        // a restarted tls-mediation is found again within seconds, not after grpc's 2-minute backoff cap
        'grpc.initial_reconnect_backoff_ms': 250,
        'grpc.max_reconnect_backoff_ms': 2_000,
      },
    );
  }

  /** A leaf for `request`, as a child span of `parent` (cached or not, the trace shows where it came from). */
  async leaf(request: LeafRequest, parent: Span): Promise<ClientLeaf> {
    const key = cacheKey(request);
    const span = startSpan(
      'tls.certificate',
      { kind: SpanKind.CLIENT, attributes: { [attr.tlsSni]: request.sni } },
      parent,
    );
    try {
      const cached = this.cache.get(key);
      if (cached && cached.notAfter - Date.now() > RENEW_BEFORE_MS) {
        // LRU: a hit moves the entry to the young end
        this.cache.delete(key);
        this.cache.set(key, cached);
        span.setAttribute(attr.tlsCertificateSource, 'proxy');
        return { ...cached, source: 'proxy' };
      }
      let inFlight = this.pending.get(key);
      const joined = inFlight !== undefined;
      if (!inFlight) {
        inFlight = this.fetch(request, span).finally(() => this.pending.delete(key));
        this.pending.set(key, inFlight);
      }
      // a handshake that waited for another's call got its leaf from the proxy: one issuance counts once
      const leaf = joined ? { ...(await inFlight), source: 'proxy' as const } : await inFlight;
      span.setAttribute(attr.tlsCertificateSource, leaf.source);
      return leaf;
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
      throw err;
    } finally {
      span.end();
    }
  }

  private fetch(request: LeafRequest, span: Span): Promise<ClientLeaf> {
    const metadata: Metadata = new GrpcMetadata();
    injectIntoGrpcMetadata(metadata, trace.setSpan(ROOT_CONTEXT, span));
    // a call during a reconnect waits for it (up to the deadline) instead of failing at once
    metadata.setOptions({ waitForReady: true });
    return new Promise((resolve, reject) => {
      this.client.issueCertificate(
        { sni: request.sni, dnsNames: [...request.dnsNames], ipAddresses: [...request.ipAddresses] },
        metadata,
        { deadline: Date.now() + this.options.deadlineMs },
        (err, response) => {
          if (err || !response) {
            const why =
              err?.code === status.INVALID_ARGUMENT
                ? `tls-mediation refused the names: ${err.details}`
                : `tls-mediation (${this.options.address}) did not answer: ${err?.details || err?.message || 'no response'}`;
            reject(new CertificateUnavailableError(why, { cause: err }));
            return;
          }
          try {
            const leaf: ClientLeaf = {
              context: createSecureContext({
                cert: response.certificatePem,
                key: response.privateKeyPem,
                minVersion: request.minVersion,
                ciphers: CLIENT_TLS12_CIPHERS,
              }),
              notAfter: Date.parse(response.notAfter),
              source: asSource(response.source),
            };
            this.remember(cacheKey(request), leaf);
            resolve(leaf);
          } catch (cause) {
            reject(
              new CertificateUnavailableError(
                `tls-mediation sent an unusable certificate: ${(cause as Error).message}`,
                { cause },
              ),
            );
          }
        },
      );
    });
  }

  private remember(key: string, leaf: ClientLeaf): void {
    this.cache.set(key, leaf);
    if (this.cache.size > MAX_ENTRIES) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
  }

  close(): void {
    this.client.close();
  }
}

function asSource(value: string): ClientLeaf['source'] {
  return value === 'memory' || value === 'redis' ? value : 'issued';
}

function cacheKey(request: LeafRequest): string {
  return [
    request.minVersion,
    request.sni,
    [...request.dnsNames].sort().join(','),
    [...request.ipAddresses].sort().join(','),
  ].join('|');
}
