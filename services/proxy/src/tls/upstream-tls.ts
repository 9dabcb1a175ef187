/**
 * TLS to the upstream when bumping, validated at least as strictly as a browser would: the system
 * trust store plus configured extra CAs, the host name checked, only TLS 1.2 with AEAD suites or
 * TLS 1.3 offered, and OpenSSL security level 2 (no RSA keys under 2048 bits, no SHA-1 signatures).
 * A failure is explained as one of a few named problems, which the client's block page shows: an
 * invalid upstream is never hidden behind the valid certificate the proxy mints.
 */
import { isIP, type Socket } from 'node:net';
import { createSecureContext, type SecureContext, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { formatAuthority } from '../http/target.js';
import { connectUpstream } from '../http/tunnel.js';
import { UpstreamError } from '../upstream/upstream.js';

/** TLS 1.2 suites offered upstream: forward-secret AEAD only (TLS 1.3 suites are all AEAD). */
export const UPSTREAM_TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

export type UpstreamTlsProblem =
  | 'expired'
  | 'not-yet-valid'
  | 'wrong-host'
  | 'self-signed'
  | 'untrusted-issuer'
  | 'weak-key'
  | 'weak-signature'
  | 'old-protocol'
  | 'weak-ciphers'
  | 'handshake';

/** Why the upstream's TLS was refused; status 502, `kind` = `tls-<problem>` for metrics. */
export class UpstreamTlsError extends UpstreamError {
  override name = 'UpstreamTlsError';
  constructor(
    message: string,
    readonly problem: UpstreamTlsProblem,
    options?: ErrorOptions,
  ) {
    super(message, 502, `tls-${problem}`, options);
  }
}

/** OpenSSL verify codes (and Node's own) → the problem a person understands. */
const BY_CODE: Record<string, UpstreamTlsProblem> = {
  CERT_HAS_EXPIRED: 'expired',
  CERT_NOT_YET_VALID: 'not-yet-valid',
  ERR_TLS_CERT_ALTNAME_INVALID: 'wrong-host',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed',
  SELF_SIGNED_CERT_IN_CHAIN: 'untrusted-issuer',
  UNABLE_TO_GET_ISSUER_CERT: 'untrusted-issuer',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'untrusted-issuer',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'untrusted-issuer',
  CERT_UNTRUSTED: 'untrusted-issuer',
  CERT_SIGNATURE_FAILURE: 'untrusted-issuer',
  INVALID_CA: 'untrusted-issuer',
  EE_KEY_TOO_SMALL: 'weak-key',
  CA_KEY_TOO_SMALL: 'weak-key',
  CA_MD_TOO_WEAK: 'weak-signature',
  ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION: 'old-protocol',
  ERR_SSL_UNSUPPORTED_PROTOCOL: 'old-protocol',
  'ERR_SSL_SSL/TLS_ALERT_HANDSHAKE_FAILURE': 'weak-ciphers',
  ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE: 'weak-ciphers',
  ERR_SSL_NO_SHARED_CIPHER: 'weak-ciphers',
  ERR_SSL_NO_CIPHERS_AVAILABLE: 'weak-ciphers',
};

const DESCRIPTION: Record<UpstreamTlsProblem, string> = {
  expired: 'its certificate has expired',
  'not-yet-valid': 'its certificate is not valid yet',
  'wrong-host': 'its certificate is for another host name',
  'self-signed': 'its certificate is self-signed',
  'untrusted-issuer':
    'its certificate is issued by an authority the gateway does not trust (or the server does not send its intermediate certificate)',
  'weak-key': 'its certificate has a weak key (RSA under 2048 bits or equivalent)',
  'weak-signature': 'its certificate is signed with a weak algorithm (SHA-1 or MD5)',
  'old-protocol': 'it only speaks a TLS version older than 1.2',
  'weak-ciphers': 'it offers none of the secure cipher suites (TLS 1.3, or TLS 1.2 with AEAD)',
  handshake: 'the TLS handshake failed',
};

/** The problem an error from a TLS connection stands for. */
export function classifyTlsFailure(err: unknown): UpstreamTlsProblem {
  const { code = '', message = '' } = err as { code?: string; message?: string };
  const known = BY_CODE[code];
  if (known) return known;
  // OpenSSL's security-level refusals arrive without a specific code (Node reports "UNSPECIFIED")
  if (/key too (weak|small)/i.test(message)) return 'weak-key';
  if (/(digest|md) (algorithm )?too weak/i.test(message)) return 'weak-signature';
  if (/protocol version|unsupported protocol/i.test(message)) return 'old-protocol';
  return 'handshake';
}

export function describeTlsProblem(problem: UpstreamTlsProblem, where: string, detail?: string): string {
  return `The server ${where} was refused: ${DESCRIPTION[problem]}${detail ? ` (${detail})` : ''}.`;
}

/**
 * Secure contexts for upstream connections, one per trust set: building one parses every trusted
 * certificate, far too slow to do per connection.
 */
export class UpstreamTrust {
  private readonly contexts = new Map<string, SecureContext>();

  /** `systemCas`: the system store's PEMs; `extraCas`: configured for every profile (deployment-wide). */
  constructor(
    private readonly systemCas: readonly string[],
    private readonly extraCas: readonly string[] = [],
  ) {}

  /** The context trusting the system store, the deployment's extra CAs and a profile's own. */
  context(profileCas: readonly string[] = []): SecureContext {
    const key = profileCas.join('\n');
    let context = this.contexts.get(key);
    if (!context) {
      context = createSecureContext({
        ca: [...this.systemCas, ...this.extraCas, ...profileCas],
        minVersion: 'TLSv1.2',
        ciphers: `${UPSTREAM_TLS12_CIPHERS}@SECLEVEL=2`,
      });
      // a handful of profiles at most: a policy change replaces them, old ones are not worth keeping
      if (this.contexts.size > 32) this.contexts.clear();
      this.contexts.set(key, context);
    }
    return context;
  }
}

export interface UpstreamTlsRequest {
  ip: string;
  port: number;
  /** The name the certificate must carry (sent as SNI); undefined when the client asked for an IP. */
  servername?: string;
  context: SecureContext;
  /** A policy exception: certificate problems are tolerated (and reported), protocol ones never. */
  tolerateCertificateProblems: boolean;
  timeoutMs: number;
}

export interface UpstreamTls {
  socket: TLSSocket;
  /** The upstream certificate's subject alternative names, to copy into the minted leaf. */
  dnsNames: string[];
  ipAddresses: string[];
  protocol: string;
  cipher: string;
  /** The certificate problem a policy exception let through. */
  toleratedProblem?: UpstreamTlsProblem;
}

/** Connects and completes a validated handshake, or rejects with an UpstreamError (TLS or not). */
export async function connectUpstreamTls(request: UpstreamTlsRequest): Promise<UpstreamTls> {
  const where = request.servername ?? formatAuthority(request.ip, request.port);
  const tcp = await connectUpstream(request.ip, request.port, request.timeoutMs);
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      socket: tcp as Socket,
      secureContext: request.context,
      ...(request.servername && !isIP(request.servername) ? { servername: request.servername } : {}),
      host: request.servername ?? request.ip,
      rejectUnauthorized: !request.tolerateCertificateProblems,
      ALPNProtocols: ['http/1.1'],
    });
    const timer = setTimeout(() => {
      fail(
        new UpstreamTlsError(
          `The server ${where} did not complete the TLS handshake within ${request.timeoutMs / 1000} s.`,
          'handshake',
        ),
      );
    }, request.timeoutMs);
    const fail = (err: UpstreamError) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.once('error', (err: Error & { code?: string }) => {
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') {
        fail(
          new UpstreamTlsError(
            `The server ${where} closed the connection during the TLS handshake.`,
            'handshake',
            { cause: err },
          ),
        );
        return;
      }
      const problem = classifyTlsFailure(err);
      fail(
        new UpstreamTlsError(describeTlsProblem(problem, where, detailOf(problem, err)), problem, {
          cause: err,
        }),
      );
    });
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      // until undici takes the socket (at the first request, after the client's handshake) an upstream
      // reset must not be an unhandled 'error': the socket is then simply found dead and replaced
      socket.removeAllListeners('error');
      socket.on('error', () => undefined);
      const names = peerNames(socket);
      const tolerated = socket.authorized
        ? undefined
        : classifyTlsFailure({
            code: String(socket.authorizationError),
            message: String(socket.authorizationError),
          });
      resolve({
        socket,
        ...names,
        protocol: socket.getProtocol() ?? 'unknown',
        cipher: socket.getCipher()?.name ?? 'unknown',
        ...(tolerated ? { toleratedProblem: tolerated } : {}),
      });
    });
  });
}

/** Detail worth showing: the host-name mismatch message names what the certificate covers. */
function detailOf(problem: UpstreamTlsProblem, err: Error): string | undefined {
  if (problem === 'wrong-host')
    return err.message.replace(/^Hostname\/IP does not match certificate's altnames: /, '');
  if (problem === 'handshake') return err.message.split('\n')[0]?.replace(/^[0-9A-F]+:error:[0-9A-F]+:/, '');
  return undefined;
}

const MAX_COPIED_NAMES = 99;

/** The DNS names and IP addresses of the peer's subjectAltName, in the order the certificate lists them. */
export function peerNames(socket: TLSSocket): { dnsNames: string[]; ipAddresses: string[] } {
  const san = socket.getPeerX509Certificate()?.subjectAltName ?? '';
  return parseSubjectAltName(san);
}

/** Node's subjectAltName text ("DNS:a, DNS:b, IP Address:1.2.3.4"); quoted (unusual) entries are skipped. */
export function parseSubjectAltName(text: string): { dnsNames: string[]; ipAddresses: string[] } {
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  for (const entry of text.split(', ')) {
    if (dnsNames.length + ipAddresses.length >= MAX_COPIED_NAMES) break;
    if (entry.startsWith('DNS:') && !entry.includes('"')) dnsNames.push(entry.slice(4));
    else if (entry.startsWith('IP Address:') && isIP(entry.slice(11))) ipAddresses.push(entry.slice(11));
  }
  return { dnsNames, ipAddresses };
}
