/**
 * Requests Node's HTTP parser (llhttp, strict mode) refuses before any handler runs: malformed
 * request lines, oversized headers, bad chunk sizes, conflicting Content-Length/Transfer-Encoding.
 * They are answered with a 4xx and the connection is closed; nothing reaches an upstream.
 */
import type { Socket } from 'node:net';
import type { ProxyDeps } from '../pipeline.js';
import { renderText } from './block-page.js';
import { writeRawResponse } from './raw-response.js';

interface ParserError extends Error {
  code?: string;
  reason?: string;
  bytesParsed?: number;
}

function classify(err: ParserError): { status: number; reason: string; label: string } {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return {
        status: 431,
        reason: 'The request header section is larger, or has more fields, than the proxy accepts.',
        label: 'header-size',
      };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'HPE_HEADERS_TIMEOUT':
      return { status: 408, reason: 'The request did not arrive completely in time.', label: 'timeout' };
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'HPE_INVALID_TRANSFER_ENCODING':
      return {
        status: 400,
        reason: `Ambiguous message framing (${err.reason ?? err.code}); refused to prevent request smuggling.`,
        label: 'framing',
      };
    case 'HPE_INVALID_CHUNK_SIZE':
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
    case 'HPE_STRICT':
      return { status: 400, reason: `Malformed chunked body (${err.reason ?? err.code}).`, label: 'chunked' };
    default:
      return {
        status: 400,
        reason: `Malformed request (${err.reason ?? err.code ?? err.message}).`,
        label: 'malformed',
      };
  }
}

export function handleClientError(deps: ProxyDeps, err: ParserError, socket: Socket, listener: string): void {
  if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || !socket.writable) {
    socket.destroy();
    return;
  }
  const { status, reason, label } = classify(err);
  deps.metrics.badRequests.inc({ reason: label });
  deps.log.debug(
    { code: err.code, reason: err.reason, client: socket.remoteAddress, listener },
    'refused a malformed request',
  );
  // a response already under way for an earlier request on this connection cannot be followed by another
  const inProgress = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (inProgress?.headersSent) {
    socket.destroy();
    return;
  }
  const body = renderText({
    status,
    title: `Bad request (${status})`,
    reason,
    facts: {},
    proxyName: deps.config.visibleHostname,
  });
  writeRawResponse(
    socket,
    status,
    { 'content-type': 'text/plain; charset=utf-8', via: `1.1 ${deps.config.visibleHostname}` },
    body,
  );
  deps.recorder.record({
    mode: listener === 'explicit' ? 'explicit' : 'transparent',
    startedAt: performance.now(),
    method: '-',
    url: '-',
    status,
    client: { ip: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 },
    server: { host: '', port: 0 },
    verdict: { action: 'block', engine: 'firewall', status, tag: 'WEBFILTER_BAD_REQUEST', reason },
    bytesIn: 0,
    bytesOut: 0,
  });
}
