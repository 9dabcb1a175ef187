import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LAB_INTERCEPT_TABLE, renderInterception } from './interception.js';

test('interception - renders one create/delete/recreate transaction for its own table only', () => {
  const script = renderInterception({ httpPort: 3129, tlsPort: 3130 });
  assert.equal(LAB_INTERCEPT_TABLE, 'moat-lab-intercept');
  assert.match(script, /^table inet moat-lab-intercept\ndelete table inet moat-lab-intercept\n/);
  assert.match(script, /type nat hook prerouting priority dstnat;/);
  assert.match(script, /iifname "lan0" tcp dport 80 redirect to :3129/);
  assert.match(script, /iifname "lan0" tcp dport 443 redirect to :3130/);
  assert.doesNotMatch(script, /table inet moat\b(?!-lab)/);
});

test('interception - refuses ports outside 1-65535', () => {
  for (const bad of [0, -1, 65_536, 80.5, Number.NaN])
    assert.throws(() => renderInterception({ httpPort: bad, tlsPort: 3130 }), RangeError);
  assert.throws(() => renderInterception({ httpPort: 3129, tlsPort: 70_000 }), /tlsPort/);
});
