// A minimal HTTP/1.1 GET on loopback, direct or through an explicit proxy (absolute-form URI).
import nodeHttp from 'node:http';

/** GET `path` from 127.0.0.1:`port`; `host` sets the Host header. Resolves { status, headers, body }. */
export function httpGet({ port, path, host, timeoutMs = 5000 }) {
  return new Promise((resolve, reject) => {
    const req = nodeHttp.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'GET',
        agent: false,
        headers: host ? { host } : {},
        timeout: timeoutMs,
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: timeout`)));
    req.on('error', reject);
    req.end();
  });
}
