import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { entryToken, JUNK, normaliseDomain, normaliseUrl } from './list-entry.js';

const bytes = (text: string) => Buffer.from(text, 'utf8');

function domain(text: string): string | typeof JUNK {
  const out = new Uint8Array(300);
  const line = bytes(text);
  const token = entryToken(line, 0, line.length);
  if (token === undefined || token === JUNK) return JUNK;
  const length = normaliseDomain(line, token[0], token[1], out);
  return length === JUNK ? JUNK : Buffer.from(out.subarray(0, length)).toString('latin1');
}

function url(text: string): string | typeof JUNK {
  const out = new Uint8Array(300);
  const line = bytes(text);
  const result = normaliseUrl(line, 0, line.length, out);
  return result === JUNK ? JUNK : Buffer.from(out.subarray(0, result.length)).toString('latin1');
}

describe('list entries', () => {
  it('list entries - skips blank and comment lines, trims CR and spaces, allows trailing comments', () => {
    const token = (text: string) => entryToken(bytes(text), 0, bytes(text).length);
    assert.equal(token(''), undefined);
    assert.equal(token('   \r'), undefined);
    assert.equal(token('# a comment'), undefined);
    assert.deepEqual(token('  example.com\r'), [2, 13]);
    assert.deepEqual(token('example.com # why'), [0, 11]);
    assert.equal(token('two words'), JUNK);
  });

  it('list entries - normalises domains: case, leading and trailing dots', () => {
    assert.equal(domain('Example.COM.'), 'example.com');
    assert.equal(domain('.example.com'), 'example.com');
    assert.equal(domain('under_score-ok.example'), 'under_score-ok.example');
    assert.equal(domain('192.0.2.7'), '192.0.2.7');
  });

  it('list entries - converts IDNs and canonicalises IPv6', () => {
    assert.equal(domain('bücher.de'), 'xn--bcher-kva.de');
    assert.equal(domain('2001:DB8:0::1'), '2001:db8::1');
  });

  it('list entries - rejects junk', () => {
    for (const junk of ['a..b', 'http://example.com/', 'example.com/path', '<html>', 'x'.repeat(64), 'a:b']) {
      assert.equal(domain(junk), JUNK, junk);
    }
  });

  it('list entries - normalises URL entries: host lowercased, scheme and port dropped, path kept', () => {
    assert.equal(url('Example.com/Some/Path?Q=1'), 'example.com/Some/Path?Q=1');
    assert.equal(url('HTTPS://example.com:8080/p'), 'example.com/p');
    assert.equal(url('example.com'), 'example.com');
    assert.equal(url('example.com/page#fragment'), 'example.com/page');
    assert.equal(url('example.com/café'), 'example.com/caf%C3%A9');
    assert.equal(url('bad host/x'), JUNK);
  });
});
