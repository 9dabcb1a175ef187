// The reference "node-floor" stack: the least a Node.js forward proxy can do per request — Node's
// HTTP server, undici's pool upstream (the same client as Moat's), end-to-end headers and Via —
// with no policy, no URL filtering, no access log, no events and no metrics. It shows what Node's
// HTTP machinery alone costs on this machine, so Moat's own per-request work can be read off the
// difference. Needs the proxy built (it borrows its header rules). Usage: node node-floor.mjs <port>
import { createServer } from 'node:http';
import { connect } from 'node:net';
import { Agent } from 'undici';
import { endToEndHeaders, withVia } from '../../../services/proxy/dist/http/headers.js';

// Moat's own header rules (hop-by-hop removal, Via), so the floor does the same header work.
const endToEnd = (headers) => withVia(endToEndHeaders(headers), '1.1', 'node-floor');

const agent = new Agent({ connections: 128, pipelining: 1, keepAliveTimeout: 30_000 });
const server = createServer({ keepAliveTimeout: 60_000, noDelay: true }, (req, res) => {
  let url;
  try {
    url = new URL(req.url);
  } catch {
    res.writeHead(400).end();
    return;
  }
  const headers = endToEnd(req.headers);
  headers.host = req.headers.host ?? url.host;
  agent.dispatch(
    { origin: url.origin, path: url.pathname + url.search, method: req.method, headers },
    {
      onRequestStart(controller) {
        res.once('close', () => {
          if (!res.writableFinished) controller.abort(new Error('client closed'));
        });
      },
      onResponseStart(_controller, status, upstreamHeaders) {
        if (status < 200) return;
        const out = endToEnd(upstreamHeaders);
        if (upstreamHeaders['content-length'] !== undefined)
          out['content-length'] = upstreamHeaders['content-length'];
        res.writeHead(status, out);
      },
      onResponseData(controller, chunk) {
        if (!res.write(chunk)) {
          controller.pause();
          res.once('drain', () => controller.resume());
        }
      },
      onResponseEnd() {
        res.end();
      },
      onResponseError(_controller, err) {
        if (res.headersSent) res.destroy();
        else res.writeHead(502, { 'content-type': 'text/plain' }).end(`${err.message}\n`);
      },
    },
  );
});
server.on('connect', (req, socket, head) => {
  const [host, port] = req.url.split(':');
  const upstream = connect({ host, port: Number(port), noDelay: true }, () => {
    socket.write('HTTP/1.1 200 Connection established\r\n\r\n');
    if (head.length) upstream.write(head);
    upstream.pipe(socket);
    socket.pipe(upstream);
  });
  const close = () => {
    upstream.destroy();
    socket.destroy();
  };
  upstream.on('error', close);
  socket.on('error', close);
});
server.listen(Number(process.argv[2]), '127.0.0.1');
