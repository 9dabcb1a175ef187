import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hashBytes } from './hash.js';
import { KeyTable, KeyTableBuilder } from './key-table.js';

/** Builds a table whose value for each key is the index of its first occurrence. */
function build(keys: string[]): { table: KeyTable; indexes: number[] } {
  const builder = new KeyTableBuilder('test keys');
  const indexes = keys.map((key, index) => {
    const bytes = Buffer.from(key, 'latin1');
    const record = builder.insert(bytes, 0, bytes.length);
    if (builder.added) builder.setValue(record, index);
    return builder.valueAt(record);
  });
  return { table: new KeyTable(builder.finish()), indexes };
}

describe('key table', () => {
  it('key table - finds every inserted key and nothing else, through growth and rehashing', () => {
    const keys = Array.from({ length: 50_000 }, (_, i) => `host${(i * 7919).toString(36)}.example`);
    const { table, indexes } = build(keys);
    assert.equal(table.size, keys.length);
    keys.forEach((key, i) => {
      assert.equal(table.findText(key), indexes[i]);
    });
    for (let i = 0; i < 10_000; i++) assert.equal(table.findText(`miss${i}.example`), -1);
  });

  it('key table - deduplicates keys and keeps their value', () => {
    const { table, indexes } = build(['a.com', 'b.com', 'a.com']);
    assert.equal(table.size, 2);
    assert.deepEqual(indexes, [0, 1, 0]);
    assert.equal(table.findText('b.com'), 1);
  });

  it('key table - stores full 32-bit values', () => {
    const builder = new KeyTableBuilder('test keys');
    const bytes = Buffer.from('big.example');
    builder.setValue(builder.insert(bytes, 0, bytes.length), 0xfedcba98);
    assert.equal(new KeyTable(builder.finish()).findText('big.example'), 0xfedcba98);
  });

  it('key table - compares a range of a string case-insensitively', () => {
    const { table } = build(['example.com']);
    assert.equal(table.findText('EXAMPLE.Com'), 0);
    assert.equal(table.findText('example.com'), 0);
    assert.equal(table.findText('example.co'), -1);
    assert.equal(table.findText('example.comm'), -1);
  });

  it('key table - an empty table answers -1', () => {
    const { table } = build([]);
    assert.equal(table.size, 0);
    assert.equal(table.findText('example.com'), -1);
  });

  it('key table - keyless markers share one value and never shadow a key with the same hash', () => {
    // find two keys whose 32-bit hashes collide (a birthday search over a few hundred thousand)
    const seen = new Map<number, string>();
    let pair: [string, string] | undefined;
    for (let i = 0; pair === undefined; i++) {
      const key = `k${i.toString(36)}.example`;
      const bytes = Buffer.from(key);
      const hash = hashBytes(bytes, 0, bytes.length);
      const other = seen.get(hash);
      if (other === undefined) seen.set(hash, key);
      else pair = [other, key];
    }
    const MARKER = 0x10000;
    for (const [marker, keyed] of [pair, [pair[1], pair[0]]]) {
      for (const order of [
        [marker, keyed],
        [keyed, marker],
      ]) {
        const builder = new KeyTableBuilder('test keys');
        for (const key of order) {
          const bytes = Buffer.from(key);
          builder.setValue(builder.insert(bytes, 0, bytes.length), key === marker ? MARKER : 7);
        }
        const table = new KeyTable(builder.finish(MARKER));
        assert.equal(table.size, 1);
        assert.equal(table.markers, 1);
        assert.equal(table.findText(keyed), 7, `${keyed} keeps its value next to marker ${marker}`);
        assert.equal(table.findText(marker), MARKER);
        assert.equal(table.findText('unrelated.example'), -1);
      }
    }
  });
});
