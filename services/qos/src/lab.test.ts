/**
 * The firewall and qos services in the lab, the way a new user meets them: `moat lab up`, `moatctl
 * apply` of the demo policy, traffic from moat-lan, then `moatctl show sessions` and `show qos`.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { LAB_ADDRESSES, LAB_NAMESPACES } from '@moat/cli';
import { runCommand } from '@moat/testkit';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MOAT = `${ROOT}bin/moat`;
const MOATCTL = `${ROOT}bin/moatctl`;
const DEMO = `${ROOT}examples/policies/demo.yaml`;
const ORIGIN = '192.0.2.10';

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: the lab needs network namespaces (run the tests with sudo)';
  const namespaces = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (Object.values(LAB_NAMESPACES).some((ns) => namespaces.includes(ns))) {
    return 'a lab is already up (run `moat lab down` first); not touching it';
  }
  for (const tool of ['ping', 'conntrack', 'tc']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`]);
    } catch {
      return `${tool} is not installed (scripts/setup.sh installs it)`;
    }
  }
  return undefined;
}
const reason = skipReason();
if (reason) console.error(`\n!!!!!!!! SKIPPING GATEWAY LAB TESTS: ${reason} !!!!!!!!\n`);

async function moatctl(...args: string[]) {
  const result = await runCommand(MOATCTL, args, { timeoutMs: 20_000 });
  assert.equal(result.code, 0, `moatctl ${args.join(' ')} failed:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

describe('firewall and qos in the lab', { skip: reason }, () => {
  before(async () => {
    const up = await runCommand(MOAT, ['lab', 'up'], { timeoutMs: 120_000 });
    assert.equal(up.code, 0, `moat lab up failed:\n${up.stdout}\n${up.stderr}`);
    await moatctl('apply', '-f', DEMO, '--wait');
  });
  after(async () => {
    await runCommand(MOAT, ['lab', 'down'], { timeoutMs: 60_000 });
  });

  test('lab - ping from moat-lan is classified interactive, shows as a NATed session and in the class counters', async () => {
    const classes = async () =>
      JSON.parse(await moatctl('--json', 'show', 'qos')) as {
        instance: string;
        result: { interface: string; class: string; isDefault: boolean; stats?: { packets: number } }[];
      }[];
    const interactive = async () =>
      (await classes())[0]?.result.find((c) => c.class === 'interactive')?.stats?.packets ?? -1;
    const before = await interactive();
    assert.ok(before >= 0, 'show qos lists the demo policy class interactive on wan0');

    const ping = await runCommand(
      'ip',
      ['netns', 'exec', LAB_NAMESPACES.lan, 'ping', '-c', '5', '-i', '0.2', '-W', '2', ORIGIN],
      {
        timeoutMs: 15_000,
      },
    );
    assert.equal(ping.code, 0, ping.stdout + ping.stderr);

    // the demo's clients-basic rule puts ping into interactive: the firewall marks, the HTB class counts
    assert.ok(
      (await interactive()) - before >= 5,
      'the five echo requests went through the interactive class',
    );
    const table = await moatctl('show', 'qos');
    assert.match(table, /wan0\s+egress\s+bulk\*/, 'the default class is starred');

    const sessions = JSON.parse(
      await moatctl('--json', 'show', 'sessions', '--protocol', 'icmp', '--destination', ORIGIN),
    ) as {
      result: { sessions: { original: { source: string }; reply: { destination: string } }[] };
    }[];
    const session = sessions[0]?.result.sessions[0];
    assert.equal(session?.original.source, LAB_ADDRESSES.lanClient);
    assert.equal(session?.reply.destination, LAB_ADDRESSES.gwWan, 'masqueraded on wan0');
    assert.match(await moatctl('show', 'sessions', '--protocol', 'icmp'), /icmp\/8 .* src→203\.0\.113\.1/);
  });
});
