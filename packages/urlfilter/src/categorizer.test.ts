import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildCategorizer } from './build.js';
import type { UrlCategorizer } from './categorizer.js';
import { UrlListError } from './errors.js';
import { type ListTree, listTree } from './test-support.js';

describe('categorizer', () => {
  let tree: ListTree;
  let categorizer: UrlCategorizer;

  before(async () => {
    tree = listTree();
    tree.write(
      'adult',
      'domains',
      'Example.COM.\r\n# a comment\r\n\r\nbad line here\r\n192.0.2.7\r\nbücher.de\r\n',
    );
    tree.write(
      'adult',
      'urls',
      'www.pages.example.org/private\nweb2.files.example.org\nhttps://other.example/Case?q=1\nbücher.urlonly/shop\n',
    );
    tree.write('gambling', 'domains', 'example.com\ncasino.example\n');
    // "games" has no urls file: UT1 categories often lack one
    tree.write('games', 'domains', 'play.example\n');
    categorizer = await buildCategorizer([
      { name: 'adult', source: tree.root, categories: ['adult'] },
      { name: 'betting', source: tree.root, categories: ['gambling', 'games'] },
      {
        name: 'local',
        domains: ['Sub.Example.com', '*.wild.example', '2001:db8::7'],
        urls: ['intranet.example/hr/'],
      },
    ]);
  });

  after(() => tree.remove());

  const categories = (host: string, path = '/') => [...categorizer.categorize(host, path)];

  it('categorizer - a domain matches itself and its subdomains on label boundaries', () => {
    assert.deepEqual(categories('casino.example'), ['betting']);
    assert.deepEqual(categories('a.b.casino.example'), ['betting']);
    assert.deepEqual(categories('notcasino.example'), []);
    assert.deepEqual(categories('casino.example.evil.com'), []);
    assert.deepEqual(categories('example'), []);
  });

  it('categorizer - normalises case, trailing dots and ports of the host', () => {
    assert.deepEqual(categories('CASINO.Example'), ['betting']);
    assert.deepEqual(categories('casino.example.'), ['betting']);
    assert.deepEqual(categories('www.casino.example:8443'), ['betting']);
  });

  it('categorizer - reports every category an entry is in, in source order', () => {
    // example.com is in adult (as "Example.COM.") and in gambling, which feeds "betting"
    assert.deepEqual(categories('www.example.com'), ['adult', 'betting']);
    // sub.example.com adds the inline "local" entry on top of its parent's categories
    assert.deepEqual(categories('x.sub.example.com'), ['adult', 'betting', 'local']);
    assert.deepEqual(categories('play.example'), ['betting']);
  });

  it('categorizer - matches IP literals exactly, never as a suffix', () => {
    assert.deepEqual(categories('192.0.2.7'), ['adult']);
    assert.deepEqual(categories('192.0.2.70'), []);
    assert.deepEqual(categories('[2001:DB8:0::7]:443'), ['local']);
    assert.deepEqual(categories('2001:db8::8'), []);
  });

  it('categorizer - matches internationalised hosts by their punycode', () => {
    assert.deepEqual(categories('BÜCHER.de'), ['adult']);
    assert.deepEqual(categories('xn--bcher-kva.de'), ['adult']);
  });

  it('categorizer - a wildcard domain matches subdomains only', () => {
    assert.deepEqual(categories('a.wild.example'), ['local']);
    assert.deepEqual(categories('wild.example'), []);
  });

  it('categorizer - URL entries match the host with or without www and a path prefix', () => {
    assert.deepEqual(categories('pages.example.org', '/private/photo.jpg'), ['adult']);
    assert.deepEqual(categories('www.pages.example.org', '/private'), ['adult']);
    assert.deepEqual(categories('www3.pages.example.org', '/private?x=1'), ['adult']);
    assert.deepEqual(categories('pages.example.org', '/public'), []);
    assert.deepEqual(categories('pages.example.org', ''), [], 'unknown path: only path-less entries match');
    // URL entries do not cover other subdomains
    assert.deepEqual(categories('cdn.pages.example.org', '/private'), []);
  });

  it('categorizer - a URL entry without a path covers the whole host', () => {
    assert.deepEqual(categories('files.example.org', '/anything'), ['adult']);
    assert.deepEqual(categories('www.files.example.org', ''), ['adult']);
  });

  it('categorizer - URL entries for internationalised hosts match by punycode', () => {
    assert.deepEqual(categories('www.Bücher.urlonly', '/shop/1'), ['adult']);
    assert.deepEqual(categories('xn--bcher-kva.urlonly', '/shop'), ['adult']);
    assert.deepEqual(categories('bücher.urlonly', '/other'), []);
  });

  it('categorizer - URL paths compare case-sensitively, hosts do not', () => {
    assert.deepEqual(categories('OTHER.example', '/Case?q=1&more'), ['adult']);
    assert.deepEqual(categories('other.example', '/case?q=1'), []);
    assert.deepEqual(categories('intranet.example', '/hr/salaries'), ['local']);
    assert.deepEqual(categories('intranet.example', '/hr'), []);
  });

  it('categorizer - counts skipped junk lines and describes the files it read', () => {
    const { stats } = categorizer;
    assert.equal(stats.skippedLines, 1);
    // example.com is listed twice but stored once
    assert.equal(stats.domainEntries, 8);
    assert.equal(stats.urlEntries, 5);
    assert.equal(stats.entries, 13);
    assert.ok(stats.bytes > 0);
    const files = stats.files.map((file) => [file.path.slice(tree.root.length), file.entries]);
    assert.deepEqual(files, [
      ['/adult/domains', 3],
      ['/adult/urls', 4],
      ['/gambling/domains', 2],
      ['/games/domains', 1],
    ]);
    assert.ok(stats.files.every((file) => file.size > 0 && file.mtimeMs > 0));
  });

  it('categorizer - a missing category directory fails with the path and what to do', async () => {
    await assert.rejects(
      buildCategorizer([{ name: 'adult', source: tree.root, categories: ['adult', 'nosuch'] }]),
      (error: unknown) => {
        assert.ok(error instanceof UrlListError);
        assert.equal(error.path, `${tree.root}/nosuch`);
        assert.equal(error.category, 'adult');
        assert.equal(error.code, 'ENOENT');
        assert.match(error.message, /does not exist/);
        assert.match(error.message, /source and categories/);
        return true;
      },
    );
  });

  it('categorizer - a directory without domains or urls files fails', async () => {
    tree.write('empty', 'domains', '');
    const { rmSync } = await import('node:fs');
    rmSync(`${tree.root}/empty/domains`);
    await assert.rejects(
      buildCategorizer([{ name: 'e', source: tree.root, categories: ['empty'] }]),
      /neither/,
    );
  });

  it('categorizer - categories without a source fail', async () => {
    await assert.rejects(buildCategorizer([{ name: 'x', categories: ['adult'] }]), UrlListError);
  });

  it('categorizer - a source without categories is itself the list directory', async () => {
    const single = await buildCategorizer([{ name: 'games', source: `${tree.root}/games` }]);
    assert.deepEqual(single.categorize('play.example', '/'), ['games']);
  });

  it('categorizer - a list file that cannot be read fails naming it', async () => {
    const { mkdirSync, symlinkSync } = await import('node:fs');
    mkdirSync(`${tree.root}/dangling`);
    symlinkSync(`${tree.root}/nowhere`, `${tree.root}/dangling/domains`);
    await assert.rejects(
      buildCategorizer([{ name: 'd', source: tree.root, categories: ['dangling'] }]),
      (error: unknown) =>
        error instanceof UrlListError &&
        error.path === `${tree.root}/dangling/domains` &&
        /cannot read/.test(error.message),
    );
  });

  it('categorizer - a list that exists but cannot be read as a file fails naming it and the cause', async () => {
    // a directory where the list file should be: unreadable for every user, root included (chmod 0
    // would not stop root, so this is the read failure the suite can always provoke)
    const { mkdirSync } = await import('node:fs');
    const path = `${tree.root}/locked/domains`;
    mkdirSync(path, { recursive: true });
    await assert.rejects(
      buildCategorizer([{ name: 'locked', source: tree.root, categories: ['locked'] }]),
      (error: unknown) => error instanceof UrlListError && error.path === path && error.code === 'EISDIR',
    );
  });

  it('categorizer - agrees with a plain suffix walk on random overlapping lists', async () => {
    // few distinct labels, so entries nest in every order: parents listed before, after or never
    const labels = ['a', 'b', 'cd', 'www', 'x-y', 'com', 'net'];
    let seed = 7;
    const random = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    const name = (depth: number) =>
      Array.from({ length: depth }, () => labels[random(labels.length)]).join('.');
    const names = ['red', 'green', 'blue'];
    const lists = names.map(() => Array.from({ length: 300 }, () => name(1 + random(4))));
    const wildcards = Array.from({ length: 20 }, () => name(1 + random(3)));
    const built = await buildCategorizer([
      ...names.map((listName, i) => ({ name: listName, domains: lists[i] })),
      { name: 'wild', domains: wildcards.map((domain) => `*.${domain}`) },
    ]);
    const expected = (host: string): string[] => {
      const parts = host.split('.');
      const suffixes = parts.map((_, i) => parts.slice(i).join('.'));
      const found = names.filter((_, i) => suffixes.some((suffix) => lists[i].includes(suffix)));
      if (suffixes.slice(1).some((suffix) => wildcards.includes(suffix))) found.push('wild');
      return found;
    };
    for (let i = 0; i < 3000; i++) {
      const host = name(1 + random(6));
      assert.deepEqual([...built.categorize(host, '/')], expected(host), host);
    }
  });
});
