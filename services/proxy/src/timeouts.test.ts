import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  type Origin,
  type ProxyHarness,
  permitAllPolicy,
  startOrigin,
  startProxyHarness,
  viaProxy,
} from './testing/harness.js';

const POLICY = permitAllPolicy('timeouts-test');

describe('timeouts', () => {
  let origin: Origin;
  let h: ProxyHarness;
  before(async () => {
    origin = await startOrigin({
      '/drip': (_req, _body, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        const timer = setInterval(() => res.write('.'), 200);
        setTimeout(() => {
          clearInterval(timer);
          res.end('done');
        }, 3000);
        res.on('close', () => clearInterval(timer));
      },
      '/late': (_req, _body, res) => {
        setTimeout(() => res.end('late'), 3000);
      },
    });
    h = await startProxyHarness({
      policy: POLICY,
      env: { MOAT_PROXY_REQUEST_TIMEOUT: '1s', MOAT_PROXY_UPSTREAM_IDLE_BODY_TIMEOUT: '10s' },
    });
  });
  after(async () => {
    await h?.stop();
    await origin?.close();
  });

  test('total time - a response still trickling at the deadline is cut, although it is never idle', async () => {
    const drip = await viaProxy(h.proxyPort, `http://127.0.0.1:${origin.port}/drip`);
    assert.equal(drip.status, 200);
    assert.ok(drip.cut, 'the transfer was cut');
    assert.ok(drip.ms >= 900 && drip.ms < 2500, `cut near the 1 s limit, after ${drip.ms} ms`);
  });

  test('total time - a server that answers after the deadline gets the client a 504 page', async () => {
    const late = await viaProxy(h.proxyPort, `http://127.0.0.1:${origin.port}/late`);
    assert.equal(late.status, 504);
    assert.match(late.body.toString(), /longer than the proxy's limit of 1 s/);
  });
});
