import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hostPrefixToStrip, isIpv4Literal, normaliseHost } from './host.js';

describe('host', () => {
  it('host - normalises case, trailing dots, ports and brackets', () => {
    assert.equal(normaliseHost('WWW.Example.COM.'), 'www.example.com');
    assert.equal(normaliseHost('example.com:8080'), 'example.com');
    assert.equal(normaliseHost('[2001:DB8:0:0::1]:443'), '2001:db8::1');
    assert.equal(normaliseHost('2001:db8::1'), '2001:db8::1');
    assert.equal(normaliseHost('192.0.2.1:80'), '192.0.2.1');
  });

  it('host - converts internationalised names to punycode', () => {
    assert.equal(normaliseHost('Bücher.de'), 'xn--bcher-kva.de');
  });

  it('host - returns empty for what is not a host', () => {
    assert.equal(normaliseHost('[not-ipv6]'), '');
    assert.equal(normaliseHost('...'), '');
  });

  it('host - recognises dotted-quad IPv4 only', () => {
    assert.equal(isIpv4Literal('192.0.2.1'), true);
    assert.equal(isIpv4Literal('192.0.2'), false);
    assert.equal(isIpv4Literal('1.192.0.2.1'), false);
    assert.equal(isIpv4Literal('example.com'), false);
  });

  it('host - strips www, web and ftp labels with digits, as squidGuard does', () => {
    assert.equal(hostPrefixToStrip('www.example.com'), 4);
    assert.equal(hostPrefixToStrip('www2.example.com'), 5);
    assert.equal(hostPrefixToStrip('web.example.com'), 4);
    assert.equal(hostPrefixToStrip('ftp10.example.com'), 6);
    assert.equal(hostPrefixToStrip('wwwx.example.com'), 0);
    assert.equal(hostPrefixToStrip('www.com'), 0, 'keeps a name that would lose its only dot');
    assert.equal(hostPrefixToStrip('mail.example.com'), 0);
  });
});
