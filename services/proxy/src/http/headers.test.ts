import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { endToEndHeaders, isForwardingLoop, withVia } from './headers.js';

describe('headers', () => {
  test('hop-by-hop - the fixed set and the fields Connection names are removed', () => {
    const out = endToEndHeaders({
      connection: 'X-Secret, close',
      'x-secret': '1',
      'keep-alive': 'timeout=5',
      'proxy-authorization': 'Basic x',
      'transfer-encoding': 'chunked',
      te: 'trailers',
      upgrade: 'h2c',
      host: 'h.test',
      'content-length': '5',
      accept: 'text/html',
      'set-cookie': ['a=1', 'b=2'],
    });
    assert.deepEqual(out, { accept: 'text/html', 'set-cookie': ['a=1', 'b=2'] });
  });

  test('Via - the proxy appends itself and recognises a loop', () => {
    assert.equal(withVia({}, '1.1', 'moat').via, '1.1 moat');
    assert.equal(withVia({ via: '1.0 fred' }, '1.1', 'moat').via, '1.0 fred, 1.1 moat');
    assert.ok(isForwardingLoop('1.0 fred, 1.1 moat', 'moat'));
    assert.equal(isForwardingLoop('1.1 moat-other', 'moat'), false);
    assert.equal(isForwardingLoop(undefined, 'moat'), false);
  });
});
