import { createServer } from 'node:http';

/**
 * Test double of a Moat service for the CLI's own tests (the real services are
 * built by others, maybe not yet): serves /healthz, /readyz and /env (the
 * MOAT_* environment it was given, to check the registry wiring), logs pino-style
 * JSON lines, and exits cleanly on SIGTERM.
 */

const port = Number(process.env.MOAT_FAKE_HTTP_PORT);
const log = (level: number, msg: string, extra: Record<string, unknown> = {}) =>
  console.log(JSON.stringify({ level, time: Date.now(), pid: process.pid, hostname: 'test', msg, ...extra }));

const server = createServer((req, res) => {
  if (req.url === '/healthz' || req.url === '/readyz') {
    res.end('ok\n');
    return;
  }
  if (req.url === '/env') {
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => key.startsWith('MOAT_')));
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(env));
    return;
  }
  res.statusCode = 404;
  res.end();
});

server.listen(port, '0.0.0.0', () => log(30, 'fake service listening', { port }));

process.on('SIGTERM', () => {
  log(40, 'fake service stopping');
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
