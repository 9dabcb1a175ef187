import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CommanderError } from 'commander';
import { CliError } from './errors.js';
import { resolveLabNamespace } from './lab/commands.js';
import { createProgram, type ProgramDeps } from './program.js';
import { silentReporter } from './report.js';
import { findOnPath } from './run.js';
import { SERVICES, selectDevServices, selectServices } from './services.js';
import { runMoat } from './testing/cli-process.js';

function program(overrides: Partial<ProgramDeps> = {}) {
  const output: string[] = [];
  const cmd = createProgram({
    reporter: silentReporter,
    writeOut: (text) => output.push(text),
    writeErr: (text) => output.push(text),
    setExitCode: () => {},
    ...overrides,
  });
  return { cmd, output };
}

const parse = (cmd: ReturnType<typeof createProgram>, args: string[]) =>
  cmd.parseAsync(['node', 'moat', ...args]);

describe('cli', () => {
  for (const args of [
    ['lab', 'up'],
    ['lab', 'down'],
    ['lab', 'status', '--json'],
    ['lab', 'exec', 'lan', '--', 'true'],
  ]) {
    test(`cli - \`moat ${args.join(' ')}\` without root fails with exit 2 and says to use sudo`, async () => {
      const { cmd } = program({ isRoot: () => false });
      await assert.rejects(parse(cmd, args), (error: unknown) => {
        assert.ok(error instanceof CliError);
        assert.equal(error.message, 'moat lab needs root (network namespaces): run with sudo');
        assert.equal(error.exitCode, 2);
        return true;
      });
    });
  }

  test('cli - the real binary run as a non-root user prints the sudo hint and exits 2', async (t) => {
    const asNobody = process.getuid?.() === 0 ? findOnPath('setpriv') : undefined;
    if (process.getuid?.() === 0 && !asNobody) return t.skip('root, and no setpriv to drop privileges');
    const prefix = asNobody ? [asNobody, '--reuid=65534', '--regid=65534', '--clear-groups'] : [];
    const result = await runMoat(['lab', 'up'], { prefix });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /moat lab needs root \(network namespaces\): run with sudo/);
  });

  test('cli - every command answers --help', async () => {
    for (const args of [
      [],
      ['lab'],
      ['lab', 'up'],
      ['lab', 'down'],
      ['lab', 'status'],
      ['lab', 'exec'],
      ['dev'],
    ]) {
      const { cmd, output } = program();
      await assert.rejects(parse(cmd, [...args, '--help']), (error: unknown) => {
        assert.ok(error instanceof CommanderError);
        assert.equal(error.code, 'commander.helpDisplayed');
        return true;
      });
      assert.match(output.join(''), /Usage: moat/, `help for ${args.join(' ') || 'moat'}`);
    }
  });

  test('cli - status commands offer --json', () => {
    const { cmd } = program();
    const status = cmd.commands.find((c) => c.name() === 'lab')?.commands.find((c) => c.name() === 'status');
    assert.ok(status?.options.some((o) => o.long === '--json'));
  });

  test('cli - dev rejects a --base-port outside 1024-65535 with a usage error', async () => {
    for (const bad of ['80', '70000', 'abc']) {
      const { cmd, output } = program();
      await assert.rejects(parse(cmd, ['dev', '--base-port', bad]), (error: unknown) => {
        assert.ok(error instanceof CommanderError);
        assert.equal(error.code, 'commander.invalidArgument');
        return true;
      });
      assert.match(output.join(''), /between 1024 and 65535/);
    }
  });

  test('cli - lab exec takes short or full namespace names and rejects others', () => {
    assert.equal(resolveLabNamespace('lan'), 'moat-lan');
    assert.equal(resolveLabNamespace('remote'), 'moat-remote');
    assert.equal(resolveLabNamespace('moat-gw'), 'moat-gw');
    for (const bad of ['host', 'toString', 'moat-other', '']) {
      assert.throws(
        () => resolveLabNamespace(bad),
        (error: unknown) => error instanceof CliError && error.exitCode === 2,
      );
    }
  });

  test('cli - --services picks registry entries, --no-services none, unknown names fail with the known list', () => {
    assert.deepEqual(selectServices(undefined), [...SERVICES]);
    assert.deepEqual(selectServices(false), []);
    assert.deepEqual(
      selectServices('control').map((s) => s.name),
      ['control'],
    );
    assert.throws(
      () => selectServices('control,nope'),
      (error: unknown) =>
        error instanceof CliError && /'nope'/.test(error.message) && /control/.test(error.hint ?? ''),
    );
  });

  test('cli - moat dev never starts a service that changes the kernel, and says why when asked to', () => {
    const names = selectDevServices(undefined).map((s) => s.name);
    assert.ok(names.includes('proxy'));
    for (const kernelService of ['firewall', 'qos']) {
      assert.ok(!names.includes(kernelService), `${kernelService} runs in the lab only`);
      assert.ok(
        selectServices(undefined).some((s) => s.name === kernelService),
        `the lab starts ${kernelService}`,
      );
    }
    assert.throws(
      () => selectDevServices('control,firewall'),
      (error: unknown) =>
        error instanceof CliError &&
        /firewall: lab only/.test(error.message) &&
        /moat lab up/.test(error.hint ?? ''),
    );
  });

  test('cli - the registry starts control with the environment the lab documents', () => {
    const control = SERVICES.find((s) => s.name === 'control');
    assert.ok(control);
    const env = control.env({
      natsUrl: 'nats://127.0.0.1:4222',
      redisUrl: 'redis://127.0.0.1:6379',
      ports: control.defaultPorts,
      expectedServices: ['control'],
      logLevel: 'info',
      socketDir: '/run/moat-lab',
      stateDir: '/run/moat-lab',
      peers: {},
    });
    assert.deepEqual(env, {
      MOAT_NATS_URL: 'nats://127.0.0.1:4222',
      MOAT_REDIS_URL: 'redis://127.0.0.1:6379',
      MOAT_CONTROL_GRPC_PORT: '50051',
      MOAT_CONTROL_HTTP_PORT: '9401',
      MOAT_CONTROL_GRPC_SOCKET: '/run/moat-lab/control.sock',
      MOAT_CONTROL_EXPECTED_SERVICES: 'control',
      MOAT_LOG_LEVEL: 'info',
    });
  });

  test('cli - the proxy finds tls-mediation at the port this run gave it; the CA is kept in the state directory', () => {
    const byName = (name: string) => {
      const service = SERVICES.find((s) => s.name === name);
      assert.ok(service, name);
      return service;
    };
    const peers = { 'tls-mediation': { http: 30015, grpc: 30016, ca: 30017 } };
    const context = {
      natsUrl: 'nats://127.0.0.1:30000',
      redisUrl: 'redis://127.0.0.1:30002',
      expectedServices: ['proxy', 'tls-mediation'],
      logLevel: 'info',
      stateDir: '/tmp/moat-dev',
      peers,
    };
    const proxy = byName('proxy').env({ ...context, ports: { http: 30006, proxy: 30007 } });
    assert.equal(proxy.MOAT_PROXY_TLS_MEDIATION_ADDRESS, '127.0.0.1:30016');
    assert.equal(proxy.MOAT_PROXY_UPSTREAM_CA_FILES, undefined, 'only the lab adds its origin CA');
    const mediation = byName('tls-mediation').env({ ...context, ports: peers['tls-mediation'] });
    assert.equal(mediation.MOAT_TLS_MEDIATION_DATA_DIR, '/tmp/moat-dev/tls-mediation');
    assert.equal(mediation.MOAT_TLS_MEDIATION_GRPC_PORT, '30016');
    assert.equal(mediation.MOAT_TLS_MEDIATION_CA_PORT, '30017');
    assert.equal(mediation.MOAT_TLS_MEDIATION_GRPC_HOST, '127.0.0.1', '`moat dev` listens on loopback only');
    assert.ok(byName('proxy').unprivileged, 'the lab runs the proxy as nobody');
    const serviceTls = {
      caFile: '/s/ca.crt',
      mediation: { certFile: '/s/m.crt', keyFile: '/s/m.key' },
      proxy: { certFile: '/s/p.crt', keyFile: '/s/p.key' },
    };
    const mutual = { ...context, serviceTls };
    assert.deepEqual(
      [
        byName('proxy').env({ ...mutual, ports: { http: 1, proxy: 2 } }).MOAT_PROXY_TLS_MEDIATION_KEY_FILE,
        byName('tls-mediation').env({ ...mutual, ports: peers['tls-mediation'] })
          .MOAT_TLS_MEDIATION_GRPC_TLS_KEY_FILE,
      ],
      ['/s/p.key', '/s/m.key'],
      'each side gets its own key for the mutual TLS channel, never the other one',
    );
    assert.ok(!byName('tls-mediation').unprivileged);
  });
});
