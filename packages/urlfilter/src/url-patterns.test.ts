import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UrlPatternError } from './errors.js';
import { compileUrlPatterns, type RequestUrl } from './url-patterns.js';

const request = (
  host: string,
  path = '/',
  scheme: 'http' | 'https' = 'https',
  port?: number,
): RequestUrl => ({
  scheme,
  host,
  path,
  ...(port === undefined ? {} : { port }),
});

describe('url patterns', () => {
  it('url patterns - a domain matches itself and subdomains, not look-alikes', () => {
    const matcher = compileUrlPatterns(['example.com']);
    assert.equal(matcher.match(request('example.com')), 'example.com');
    assert.equal(matcher.match(request('a.b.example.com')), 'example.com');
    assert.equal(matcher.match(request('notexample.com')), undefined);
    assert.equal(matcher.match(request('example.com.evil.net')), undefined);
  });

  it('url patterns - a wildcard matches subdomains only', () => {
    const matcher = compileUrlPatterns(['*.example.com']);
    assert.equal(matcher.match(request('www.example.com')), '*.example.com');
    assert.equal(matcher.match(request('example.com')), undefined);
  });

  it('url patterns - hosts compare case-insensitively and ignore a trailing dot', () => {
    const matcher = compileUrlPatterns(['Example.COM']);
    assert.equal(matcher.match(request('WWW.EXAMPLE.com.')), 'Example.COM');
  });

  it('url patterns - a path is a case-sensitive prefix of path and query', () => {
    const matcher = compileUrlPatterns(['example.com/Docs']);
    assert.equal(matcher.match(request('example.com', '/Docs/a?b')), 'example.com/Docs');
    assert.equal(matcher.match(request('www.example.com', '/Docs')), 'example.com/Docs');
    assert.equal(matcher.match(request('example.com', '/docs')), undefined);
    assert.equal(matcher.match(request('example.com', '/')), undefined);
    assert.equal(
      matcher.match(request('example.com', '')),
      undefined,
      'unknown path does not match a path pattern',
    );
  });

  it('url patterns - a scheme or port restricts the match', () => {
    const matcher = compileUrlPatterns(['https://secure.example/login', 'example.net:8080']);
    assert.equal(matcher.match(request('secure.example', '/login')), 'https://secure.example/login');
    assert.equal(matcher.match(request('secure.example', '/login', 'http')), undefined);
    assert.equal(matcher.match(request('example.net', '/', 'http', 8080)), 'example.net:8080');
    assert.equal(matcher.match(request('example.net', '/', 'http')), undefined, 'default port 80');
  });

  it('url patterns - IP addresses match only themselves', () => {
    const matcher = compileUrlPatterns(['192.0.2.10']);
    assert.equal(matcher.match(request('192.0.2.10', '/', 'http', 80)), '192.0.2.10');
    assert.equal(matcher.match(request('1.192.0.2.10')), undefined);
  });

  it('url patterns - returns the first matching pattern in list order', () => {
    const matcher = compileUrlPatterns(['example.com/a', 'www.example.com', 'example.com']);
    assert.equal(matcher.match(request('www.example.com', '/a/b')), 'example.com/a');
    assert.equal(matcher.match(request('www.example.com', '/b')), 'www.example.com');
    assert.equal(matcher.match(request('api.example.com', '/b')), 'example.com');
    assert.equal(matcher.size, 3);
  });

  it('url patterns - rejects what it cannot read', () => {
    for (const bad of ['', 'exa mple.com', 'ftp://example.com', '*.192.0.2.1', 'example.com:70000', 'a..b']) {
      assert.throws(() => compileUrlPatterns([bad]), UrlPatternError, bad);
    }
  });
});
