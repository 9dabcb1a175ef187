import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { labHostsFile, removeLabHosts, renderLabHosts, writeLabHosts } from './hosts.js';
import { LAB_HOSTNAMES } from './topology.js';

// A stand-in for /etc/netns, so these run without root and never touch /etc.
const base = mkdtempSync(join(tmpdir(), 'moat-lab-hosts-'));
after(() => rmSync(base, { recursive: true, force: true }));

test('hosts - maps every lab name to the origin, IPv6 only when the kernel has it', () => {
  const both = renderLabHosts('moat-lan', true);
  assert.match(both, new RegExp(`^192\\.0\\.2\\.10\\t${LAB_HOSTNAMES.join(' ')}$`, 'm'));
  assert.match(both, /^fd00:70:2::10\t/m);
  assert.match(both, /^127\.0\.0\.1\tlocalhost$/m);
  assert.doesNotMatch(renderLabHosts('moat-lan', false), /fd00|::1/);
});

test('hosts - up writes a file per namespace, down removes only its own files and directories', () => {
  const etc = join(base, 'netns');
  mkdirSync(join(etc, 'moat-remote'), { recursive: true });
  writeFileSync(join(etc, 'moat-remote', 'hosts'), '10.0.0.1 mine.example\n');

  const first = writeLabHosts(etc);
  assert.deepEqual(first.foreign, ['moat-remote'], "someone else's file is left alone");
  assert.deepEqual(first.createdDirs.sort(), [
    join(etc, 'moat-gw'),
    join(etc, 'moat-lan'),
    join(etc, 'moat-wan'),
  ]);
  assert.match(readFileSync(labHostsFile('moat-lan', etc), 'utf8'), /casino\.test/);
  assert.equal(readFileSync(join(etc, 'moat-remote', 'hosts'), 'utf8'), '10.0.0.1 mine.example\n');
  assert.deepEqual(writeLabHosts(etc).createdDirs, [], 'idempotent');

  removeLabHosts(first.createdDirs, etc);
  for (const ns of ['moat-lan', 'moat-gw', 'moat-wan']) assert.equal(existsSync(join(etc, ns)), false, ns);
  assert.equal(readFileSync(join(etc, 'moat-remote', 'hosts'), 'utf8'), '10.0.0.1 mine.example\n');
  assert.equal(existsSync(etc), true, 'a directory the lab did not create stays');
});
