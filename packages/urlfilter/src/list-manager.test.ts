import assert from 'node:assert/strict';
import { utimesSync, writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { setImmediate as nextTick } from 'node:timers/promises';
import type { UrlCategorizerStats } from './categorizer.js';
import { UrlListError } from './errors.js';
import { UrlListManager } from './list-manager.js';
import { type ListTree, listTree } from './test-support.js';

describe('url list manager', () => {
  let tree: ListTree;
  beforeEach(() => {
    tree = listTree();
  });
  afterEach(() => tree.remove());

  it('url list manager - starts empty and rebuilds only when the sources change', async () => {
    const reloads: UrlCategorizerStats[] = [];
    const manager = new UrlListManager({ onReload: (stats) => reloads.push(stats) });
    assert.deepEqual(manager.categorize('example.com'), []);
    assert.equal(await manager.update([{ name: 'ads', domains: ['ads.example'] }]), true);
    assert.deepEqual(manager.categorize('x.ads.example'), ['ads']);
    // the same sources, with keys in another order: no rebuild
    assert.equal(await manager.update([{ domains: ['ads.example'], name: 'ads' }]), false);
    assert.equal(await manager.checkForChanges(), false);
    assert.equal(await manager.update([{ name: 'ads', domains: ['ads.example', 'more.example'] }]), true);
    assert.deepEqual(manager.categorize('more.example'), ['ads']);
    assert.deepEqual(
      reloads.map((stats) => stats.domainEntries),
      [1, 2],
    );
    assert.equal(manager.stats.domainEntries, 2);
  });

  it('url list manager - checkForChanges picks up a rewritten list file', async () => {
    const path = tree.write('adult', 'domains', 'first.example\n');
    const manager = new UrlListManager();
    await manager.update([{ name: 'adult', source: tree.root, categories: ['adult'] }]);
    assert.deepEqual(manager.categorize('first.example'), ['adult']);
    assert.equal(await manager.checkForChanges(), false);

    writeFileSync(path, 'second.example\nthird.example\n');
    assert.equal(await manager.checkForChanges(), true);
    assert.deepEqual(manager.categorize('first.example'), []);
    assert.deepEqual(manager.categorize('third.example'), ['adult']);

    // same size, only the mtime moves
    writeFileSync(path, 'fourth.example\nthird.example\n');
    utimesSync(path, new Date(), new Date(Date.now() + 5000));
    assert.equal(await manager.checkForChanges(), true);
    assert.deepEqual(manager.categorize('fourth.example'), ['adult']);
  });

  it('url list manager - a urls file that appears later is picked up', async () => {
    tree.write('adult', 'domains', 'first.example\n');
    const manager = new UrlListManager();
    await manager.update([{ name: 'adult', source: tree.root, categories: ['adult'] }]);
    tree.write('adult', 'urls', 'pages.example/x\n');
    assert.equal(await manager.checkForChanges(), true);
    assert.deepEqual(manager.categorize('pages.example', '/x/y'), ['adult']);
  });

  it('url list manager - a failed build keeps the previous categorizer', async () => {
    tree.write('adult', 'domains', 'first.example\n');
    const manager = new UrlListManager();
    await manager.update([{ name: 'adult', source: tree.root, categories: ['adult'] }]);
    const previous = manager.categorizer;

    const broken = [{ name: 'adult', source: tree.root, categories: ['adult', 'missing'] }];
    await assert.rejects(manager.update(broken), (error: unknown) => {
      assert.ok(error instanceof UrlListError);
      assert.equal(error.path, `${tree.root}/missing`);
      return true;
    });
    assert.equal(manager.categorizer, previous);
    assert.deepEqual(manager.categorize('first.example'), ['adult']);
    assert.ok(manager.lastError instanceof UrlListError);

    // nothing changed: no retry, no repeated error
    assert.equal(await manager.checkForChanges(), false);
    // the directory appears: the timer's check retries and succeeds
    tree.write('missing', 'domains', 'found.example\n');
    assert.equal(await manager.checkForChanges(), true);
    assert.deepEqual(manager.categorize('found.example'), ['adult']);
    assert.equal(manager.lastError, undefined);
  });

  it('url list manager - lookups keep answering from the old tables while a big build runs', async () => {
    const lines: string[] = [];
    for (let i = 0; i < 1_000_000; i++) lines.push(`host${i.toString(36)}.site${i % 1000}.example`);
    tree.write('big', 'domains', `${lines.join('\n')}\n`);
    const manager = new UrlListManager();
    await manager.update([{ name: 'old', domains: ['old.example'] }]);

    let finished = false;
    const building = manager.update([{ name: 'big', source: tree.root, categories: ['big'] }]);
    void building.then(() => {
      finished = true;
    });
    let ticks = 0;
    let lookups = 0;
    while (!finished) {
      for (let i = 0; i < 1000; i++, lookups++) {
        assert.deepEqual(manager.categorize('www.old.example'), ['old']);
      }
      ticks++;
      await nextTick();
    }
    assert.equal(await building, true);
    // the build ran off the event loop: the loop kept turning and serving lookups meanwhile
    assert.ok(ticks >= 5, `only ${ticks} event loop turns during the build`);
    assert.ok(lookups >= 5000);
    assert.equal(manager.stats.domainEntries, 1_000_000);
    assert.deepEqual(manager.categorize('www.host2n9c.site456.example'), ['big']);
    assert.deepEqual(manager.categorize('www.old.example'), []);
  });

  it('url list manager - calls made during a build run after it, in order', async () => {
    const manager = new UrlListManager();
    const first = manager.update([{ name: 'a', domains: ['a.example'] }]);
    const second = manager.update([{ name: 'b', domains: ['b.example'] }]);
    const check = manager.checkForChanges();
    assert.deepEqual(await Promise.all([first, second, check]), [true, true, false]);
    assert.deepEqual(manager.categorize('a.example'), []);
    assert.deepEqual(manager.categorize('b.example'), ['b']);
  });
});
