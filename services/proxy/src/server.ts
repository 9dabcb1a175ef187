/**
 * The proxy's listeners, created but never bound (main.ts binds; tests bind port 0): the explicit
 * proxy port, the intercepted-HTTP port and the intercepted-TLS port; and the server decrypted
 * (bumped) connections are handed to, which never listens.
 */
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createTcpServer, type Socket, type Server as TcpServer } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { originalDestination } from '@moat/intercept';
import { handleClientError } from './http/client-errors.js';
import { handleConnect } from './http/connect.js';
import { handleForward } from './http/forward.js';
import { writeRawResponse } from './http/raw-response.js';
import type { OriginalDestination, ProxyDeps } from './pipeline.js';
import { tunnelOf } from './tls/bump.js';
import { handleInterceptedTls } from './transparent/tls.js';

export interface ProxyServers {
  explicit: Server;
  transparentHttp: Server;
  transparentTls: TcpServer;
  /** Never listens: bumped connections are handed to it once decrypted. */
  bumped: Server;
}

function httpServer(deps: ProxyDeps, listener: 'explicit' | 'transparent' | 'bumped'): Server {
  const { config } = deps;
  const server = createHttpServer({
    maxHeaderSize: config.maxHeaderSize,
    requireHostHeader: true,
    headersTimeout: config.headersTimeout,
    // Node's own limit covers receiving the request only; it may not be shorter than headersTimeout
    requestTimeout: config.requestTimeout > 0 ? Math.max(config.requestTimeout, config.headersTimeout) : 0,
    keepAliveTimeout: config.clientIdleTimeout,
    noDelay: true,
    // duplicate Content-Length or Host headers must stay visible as duplicates, not be merged
    joinDuplicateHeaders: false,
  });
  // llhttp refuses a request with more fields than this (431), rather than dropping the excess
  server.maxHeadersCount = config.maxHeaderCount;
  server.on('clientError', (err, socket) => handleClientError(deps, err, socket as Socket, listener));
  server.on('connection', (socket: Socket) => {
    deps.metrics.connections.inc({ listener });
    socket.once('close', () => deps.metrics.connections.dec({ listener }));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    deps.metrics.badRequests.inc({ reason: 'upgrade' });
    writeRawResponse(
      socket,
      501,
      { 'content-type': 'text/plain; charset=utf-8' },
      `Protocol upgrades (${req.headers.upgrade ?? 'unknown'}) over plain HTTP are not supported by this proxy yet; use wss:// (CONNECT).\n`,
    );
  });
  return server;
}

const originals = new WeakMap<Socket, OriginalDestination | null>();

/** The original destination of an intercepted connection, looked up once per connection. */
function originalOf(socket: Socket): OriginalDestination | undefined {
  let known = originals.get(socket);
  if (known === undefined) {
    known = originalDestination(socket) ?? null;
    originals.set(socket, known);
  }
  return known ?? undefined;
}

export function createProxyServers(deps: ProxyDeps): ProxyServers {
  const bumped = httpServer(deps, 'bumped');
  // a decrypted connection idle this long is closed, like a spliced tunnel
  bumped.timeout = deps.config.tunnelIdleTimeout;
  bumped.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const tunnel = tunnelOf(req.socket);
    if (!tunnel) {
      res.destroy();
      return;
    }
    tunnel.requests++;
    handleForward(deps, req, res, 'bumped', undefined, tunnel);
  });
  bumped.on('connect', (_req: IncomingMessage, socket: Socket) => {
    writeRawResponse(
      socket,
      400,
      { 'content-type': 'text/plain' },
      'CONNECT is only accepted on the explicit proxy port.\n',
    );
  });
  const accept = (socket: TLSSocket) => bumped.emit('connection', socket);

  const explicit = httpServer(deps, 'explicit');
  explicit.on('request', (req: IncomingMessage, res: ServerResponse) =>
    handleForward(deps, req, res, 'explicit'),
  );
  explicit.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) =>
    handleConnect(deps, req, socket, head, accept),
  );

  const transparentHttp = httpServer(deps, 'transparent');
  transparentHttp.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const original = originalOf(req.socket);
    if (!original) {
      deps.metrics.badRequests.inc({ reason: 'not-intercepted' });
      res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
      res.end(
        `This port only serves intercepted traffic. Configure ${deps.config.visibleHostname} as an explicit proxy (port ${deps.config.port}) instead.\n`,
      );
      return;
    }
    handleForward(deps, req, res, 'transparent', original);
  });
  transparentHttp.on('connect', (_req: IncomingMessage, socket: Socket) => {
    writeRawResponse(
      socket,
      400,
      { 'content-type': 'text/plain' },
      'CONNECT is only accepted on the explicit proxy port.\n',
    );
  });

  const transparentTls = createTcpServer({ noDelay: true, pauseOnConnect: false }, (socket) => {
    deps.metrics.connections.inc({ listener: 'transparent-tls' });
    socket.once('close', () => deps.metrics.connections.dec({ listener: 'transparent-tls' }));
    handleInterceptedTls(deps, socket, accept);
  });
  return { explicit, transparentHttp, transparentTls, bumped };
}
