/**
 * Hands out the interception CA's certificate so clients can trust it: PEM, DER, and a page saying
 * how to install it. Only the certificate: the key is never on this path.
 */
import { createServer, type Server } from 'node:http';
import type { InterceptionCa } from './ca.js';

export function createCaServer(ca: InterceptionCa): Server {
  const der = Buffer.from(ca.certificate.rawData);
  const page = `Moat interception CA
${ca.certificate.subject}
valid until ${ca.certificate.notAfter.toISOString()}

Download:  /ca.pem (PEM)   /ca.der (DER, e.g. for Windows and Android)

Install it as a trusted root on each client whose HTTPS Moat inspects:
  Debian/Ubuntu  sudo cp ca.pem /usr/local/share/ca-certificates/moat.crt && sudo update-ca-certificates
  Fedora/RHEL    sudo cp ca.pem /etc/pki/ca-trust/source/anchors/moat.pem && sudo update-ca-trust
  macOS          sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain ca.pem
  Windows        certutil -addstore -f Root ca.der
  Firefox        Settings, Certificates, Import (Firefox keeps its own store)
  curl           curl --cacert ca.pem https://...
`;
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (path === '/ca.pem') {
      res.writeHead(200, {
        'content-type': 'application/x-pem-file',
        'content-disposition': 'attachment; filename="moat-ca.pem"',
      });
      res.end(ca.certificatePem);
    } else if (path === '/ca.der' || path === '/ca.crt') {
      res.writeHead(200, {
        'content-type': 'application/x-x509-ca-cert',
        'content-disposition': 'attachment; filename="moat-ca.der"',
      });
      res.end(der);
    } else if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end(page);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /, /ca.pem or /ca.der\n');
    }
  });
}
