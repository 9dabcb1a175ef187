/**
 * The gRPC side: IssueCertificate, answered from the leaf cache or minted. Builds the server and
 * never binds (main.ts does), so tests bind on port 0.
 */
import { type handleUnaryCall, Server, status } from '@grpc/grpc-js';
import type { Logger } from '@moat/log';
import { tlsV1 as pb } from '@moat/proto';
import { attr, contextFromGrpcMetadata, withSpan } from '@moat/telemetry';
import { SpanKind } from '@opentelemetry/api';
import { HealthImplementation } from 'grpc-health-check';
import type { InterceptionCa } from './ca.js';
import { issueLeaf, LeafRequestError } from './issuer.js';
import type { LeafCache } from './leaf-cache.js';

export interface IssuerDeps {
  ca: InterceptionCa;
  cache: LeafCache;
  leafHours: number;
  log: Logger;
  /** Called once per answer, with where it came from (for metrics). */
  onIssued?: (source: 'memory' | 'redis' | 'issued') => void;
}

export function createTlsMediationServer(deps: IssuerDeps): { server: Server; health: HealthImplementation } {
  const issueCertificate: handleUnaryCall<pb.IssueCertificateRequest, pb.IssueCertificateResponse> = (
    call,
    callback,
  ) => {
    const request = {
      sni: call.request.sni,
      dnsNames: call.request.dnsNames,
      ipAddresses: call.request.ipAddresses,
    };
    // a server span in the caller's trace (the proxy's bumped connection): cached or minted, it shows
    withSpan(
      'tls.IssueCertificate',
      {
        kind: SpanKind.SERVER,
        parent: contextFromGrpcMetadata(call.metadata),
        attributes: { 'rpc.system': 'grpc', [attr.tlsSni]: request.sni },
      },
      async (span) => {
        const leaf = await deps.cache.get(request, () => issueLeaf(deps.ca, request, deps.leafHours));
        span.setAttribute(attr.tlsCertificateSource, leaf.source);
        return leaf;
      },
    ).then(
      (leaf) => {
        deps.onIssued?.(leaf.source);
        callback(null, {
          certificatePem: leaf.certificatePem,
          privateKeyPem: leaf.privateKeyPem,
          caCertificatePem: deps.ca.certificatePem,
          notAfter: leaf.notAfter.toISOString(),
          source: leaf.source,
          serial: leaf.serial,
        });
      },
      (err: unknown) => {
        if (err instanceof LeafRequestError) {
          callback({ code: status.INVALID_ARGUMENT, details: err.message });
          return;
        }
        deps.log.error({ err, sni: request.sni }, 'could not issue a leaf certificate');
        callback({
          code: status.INTERNAL,
          details: `could not issue a certificate: ${(err as Error).message}`,
        });
      },
    );
  };
  const server = new Server();
  server.addService(pb.TlsMediationServiceService, { issueCertificate });
  const health = new HealthImplementation({ '': 'SERVING', 'moat.tls.v1.TlsMediationService': 'SERVING' });
  health.addToServer(server);
  return { server, health };
}
