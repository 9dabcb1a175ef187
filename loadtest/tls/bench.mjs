#!/usr/bin/env node
// loadtest/tls — bumped HTTPS through Moat (proxy + tls-mediation) vs Squid's ssl-bump, same origin,
// same run: new handshakes per second with a cold and a warm certificate cache, and the latency a
// bumped request adds. See README.md. A benchmark, not a test: run it by hand, never in CI.
import { chownSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { httpGet } from '../proxy/lib/http.mjs';
import { cpuMs } from '../proxy/lib/load.mjs';
import {
  canConnect,
  freePort,
  installCleanupHandlers,
  keepTempDirs,
  log,
  makeTempDir,
  rerunInNetns,
  run,
  runMain,
  startProcess,
  waitFor,
} from '../proxy/lib/procs.mjs';
import { markdownTable, median, summarise } from '../proxy/lib/report.mjs';
import { cleanEnv, proxyUserIds, squidBaseConfig, startMoat } from '../proxy/lib/stacks.mjs';

const REPO = resolve(fileURLToPath(new URL('../../', import.meta.url)));
const SQUID = '/usr/sbin/squid';
const NGINX = '/usr/sbin/nginx';
const CERTGEN = '/usr/lib/squid/security_file_certgen';

const HELP = `Usage: node loadtest/tls/bench.mjs [options]   (as root: it runs in its own network namespace)

Bumped HTTPS through Moat (proxy + tls-mediation) and through Squid 5 ssl-bump, side by side,
against one nginx HTTPS origin on loopback. Reports medians over the rounds and Moat/Squid ratios.

  --rounds N            rounds; the stacks alternate and the order flips each round (default 3)
  --handshakes N        new connections per measurement (default 300)
  --concurrency N       parallel connections of the load client, curl --parallel (default 8)
  --latency-samples N   sequential requests for the latency measurement (default 40)
  --json                print the whole result as JSON instead of the markdown table
  --keep-temp           keep the temp dir (configs, logs) for inspection
  -h, --help            this text

Each measured connection is a new TCP connection and a full TLS handshake (curl --no-sessionid,
Connection: close) through the proxy: CONNECT, the bumped handshake with the client, the proxy's
own validated handshake with the origin, GET /1k. "Cold" uses host names neither proxy has seen
(every connection needs a new leaf certificate); "warm" repeats 16 names minted before measuring.
Needs nginx, squid (squid-openssl), curl, nats-server, redis-server; services built (npm run build).`;

function options() {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      handshakes: { type: 'string', default: '300' },
      concurrency: { type: 'string', default: '8' },
      'latency-samples': { type: 'string', default: '40' },
      json: { type: 'boolean', default: false },
      'keep-temp': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const int = (name, min) => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}`);
    return n;
  };
  return {
    help: values.help,
    rounds: int('rounds', 1),
    handshakes: int('handshakes', 10),
    concurrency: int('concurrency', 1),
    latencySamples: int('latency-samples', 5),
    json: values.json,
    keepTemp: values['keep-temp'],
  };
}

const WARM_NAMES = Array.from({ length: 16 }, (_, i) => `warm${i}.bench.test`);
const coldNames = (round, stack, n) =>
  Array.from({ length: n }, (_, i) => `c${round}-${stack}-${i}.bench.test`);
const allNames = (opts) => [
  'origin.bench.test',
  'blocked.bench.test',
  ...WARM_NAMES,
  ...['moat', 'squid'].flatMap((stack) =>
    Array.from({ length: opts.rounds }, (_, r) => coldNames(r, stack, opts.handshakes)).flat(),
  ),
];

// ---------------------------------------------------------------------------------------------------
// PKI: the "public" CA the origin's certificates chain to (both proxies trust it upstream), one
// certificate per host name (so a new name means a new upstream certificate for Squid to mimic too),
// and Squid's signing CA. Moat's CA is the one tls-mediation generates on its first start.

async function makePki(dir, names) {
  const { x509, crypto } = await import(join(REPO, 'packages/x509/dist/index.js'));
  const EC = { name: 'ECDSA', namedCurve: 'P-256' };
  const sig = { name: 'ECDSA', hash: 'SHA-256' };
  const pem = async (key) =>
    x509.PemConverter.encode(await crypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
  const ca = async (name) => {
    const keys = await crypto.subtle.generateKey(EC, true, ['sign', 'verify']);
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01',
      name,
      notBefore: new Date(Date.now() - 3600_000),
      notAfter: new Date(Date.now() + 30 * 86400_000),
      keys,
      signingAlgorithm: sig,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      ],
    });
    return { cert, keys };
  };
  const root = join(dir, 'pki');
  mkdirSync(join(root, 'certs'), { recursive: true });
  const upstream = await ca('CN=Bench public CA');
  writeFileSync(join(root, 'upstream-ca.crt'), upstream.cert.toString('pem'));
  const leafKeys = await crypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  writeFileSync(join(root, 'origin.key'), await pem(leafKeys.privateKey), { mode: 0o600 });
  let serial = 0x1000;
  for (const name of names) {
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: (serial++).toString(16),
      subject: `CN=${name}`,
      issuer: upstream.cert.subject,
      notBefore: new Date(Date.now() - 3600_000),
      notAfter: new Date(Date.now() + 30 * 86400_000),
      publicKey: leafKeys.publicKey,
      signingKey: upstream.keys.privateKey,
      signingAlgorithm: sig,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: name }]),
      ],
    });
    writeFileSync(join(root, 'certs', `${name}.crt`), cert.toString('pem'));
  }
  const squid = await ca('CN=Squid bench CA');
  writeFileSync(join(root, 'squid-ca.crt'), squid.cert.toString('pem'));
  writeFileSync(join(root, 'squid-ca.key'), await pem(squid.keys.privateKey), { mode: 0o600 });
  return {
    root,
    upstreamCa: join(root, 'upstream-ca.crt'),
    squidCa: join(root, 'squid-ca.crt'),
    squidKey: join(root, 'squid-ca.key'),
  };
}

// ---------------------------------------------------------------------------------------------------
// The stacks

/** nginx, one worker, TLS 1.2/1.3 with the certificate named by the SNI; serves /1k. */
async function startTlsOrigin(dir, pki) {
  const root = join(dir, 'origin');
  mkdirSync(join(root, 'www'), { recursive: true });
  mkdirSync(join(root, 'tmp'), { recursive: true });
  writeFileSync(join(root, 'www', '1k'), Buffer.alloc(1024, 'x'));
  const port = 443; // the namespace is ours: the URLs need no port, as in real life
  const conf = join(root, 'nginx.conf');
  writeFileSync(
    conf,
    `daemon off;
master_process off;
worker_processes 1;
pid ${root}/nginx.pid;
error_log ${root}/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${root}/tmp/body;
  proxy_temp_path ${root}/tmp/proxy;
  fastcgi_temp_path ${root}/tmp/fastcgi;
  uwsgi_temp_path ${root}/tmp/uwsgi;
  scgi_temp_path ${root}/tmp/scgi;
  default_type application/octet-stream;
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:${port} ssl backlog=4096;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate ${pki.root}/certs/$ssl_server_name.crt;
    ssl_certificate_key ${pki.root}/origin.key;
    root ${root}/www;
    location / { }
  }
}
`,
  );
  const handle = startProcess('nginx', NGINX, ['-p', root, '-c', conf, '-e', join(root, 'error.log')], {
    logDir: root,
    env: cleanEnv(),
  });
  await waitFor('nginx origin', () => canConnect(port), { handle });
  return { name: 'origin', port, handle, stop: () => handle.stop() };
}

/** The proxy ↔ tls-mediation mutual TLS certificates, as a deployment has them. */
async function serviceTls(dir) {
  const { createPrivateCa } = await import(join(REPO, 'packages/x509/dist/pki.js'));
  const root = join(dir, 'service-tls');
  mkdirSync(root, { recursive: true });
  const ca = await createPrivateCa('Bench service CA');
  const server = await ca.issue({ commonName: 'tls-mediation', ipAddresses: ['127.0.0.1'], usage: 'server' });
  const client = await ca.issue({ commonName: 'moat-proxy', usage: 'client' });
  const file = (name, text) => {
    writeFileSync(join(root, name), text, { mode: 0o600 });
    return join(root, name);
  };
  const caFile = file('ca.crt', ca.cert);
  return {
    proxy: {
      MOAT_PROXY_TLS_MEDIATION_CA_FILE: caFile,
      MOAT_PROXY_TLS_MEDIATION_CERT_FILE: file('proxy.crt', client.cert),
      MOAT_PROXY_TLS_MEDIATION_KEY_FILE: file('proxy.key', client.key),
    },
    mediation: {
      MOAT_TLS_MEDIATION_GRPC_CLIENT_CA_FILE: caFile,
      MOAT_TLS_MEDIATION_GRPC_TLS_CERT_FILE: file('server.crt', server.cert),
      MOAT_TLS_MEDIATION_GRPC_TLS_KEY_FILE: file('server.key', server.key),
    },
  };
}

/** Moat: the proxy (with its NATS and Redis) and tls-mediation, whose CA the client trusts. */
async function startMoatStack(dir, pki) {
  const grpcPort = await freePort();
  const mtls = await serviceTls(dir);
  const stack = await startMoat(dir, {
    repo: REPO,
    policyFile: join(REPO, 'loadtest/tls/bench-policy.yaml'),
    extraEnv: {
      MOAT_PROXY_TLS_MEDIATION_ADDRESS: `127.0.0.1:${grpcPort}`,
      MOAT_PROXY_UPSTREAM_CA_FILES: pki.upstreamCa,
      ...mtls.proxy,
    },
  });
  const [httpPort, caPort] = [await freePort(), await freePort()];
  const root = join(dir, 'tls-mediation');
  mkdirSync(root, { recursive: true });
  const mediation = startProcess(
    'tls-mediation',
    process.execPath,
    ['--enable-source-maps', join(REPO, 'services/tls-mediation/dist/main.js')],
    {
      logDir: root,
      cwd: REPO,
      env: cleanEnv({
        MOAT_NATS_URL: stack.env.MOAT_NATS_URL,
        MOAT_REDIS_URL: stack.env.MOAT_REDIS_URL,
        MOAT_LOG_LEVEL: 'warn',
        MOAT_TLS_MEDIATION_GRPC_HOST: '127.0.0.1',
        MOAT_TLS_MEDIATION_GRPC_PORT: String(grpcPort),
        MOAT_TLS_MEDIATION_HTTP_PORT: String(httpPort),
        MOAT_TLS_MEDIATION_CA_HOST: '127.0.0.1',
        MOAT_TLS_MEDIATION_CA_PORT: String(caPort),
        MOAT_TLS_MEDIATION_DATA_DIR: join(root, 'data'),
        ...mtls.mediation,
      }),
    },
  );
  await waitFor(
    'tls-mediation /readyz',
    async () => (await httpGet({ port: httpPort, path: '/readyz' })).status === 200,
    { handle: mediation, timeoutMs: 30_000, intervalMs: 200 },
  );
  const ca = await httpGet({ port: caPort, path: '/ca.pem' });
  if (ca.status !== 200) throw new Error(`tls-mediation /ca.pem: ${ca.status}`);
  const clientCa = join(root, 'moat-ca.pem');
  writeFileSync(clientCa, ca.body);
  const supportPids = stack.supportPids;
  const stopProxy = stack.stop;
  return Object.assign(stack, {
    clientCa,
    // what bumping costs Moat: the proxy, tls-mediation, and the NATS and Redis they use
    cpuPids: () => [stack.pid, mediation.pid, ...supportPids()],
    stop: async () => {
      await mediation.stop();
      await stopProxy();
    },
  });
}

/** Squid 5 (OpenSSL build), one process plus its certificate generator helpers: peek, then bump all. */
async function startSquidBump(dir, pki) {
  const root = join(dir, 'squid');
  mkdirSync(root, { recursive: true });
  const version = (await run(SQUID, ['-v'])).stdout;
  if (!/--with-openssl/.test(version))
    throw new Error(`${SQUID} is not built with OpenSSL (ssl-bump): apt-get install squid-openssl`);
  const sslDb = join(root, 'ssl_db');
  const init = await run(CERTGEN, ['-c', '-s', sslDb, '-M', '64MB']);
  if (init.code !== 0) throw new Error(`security_file_certgen -c: ${init.stderr}`);
  const port = await freePort();
  const conf = join(root, 'squid.conf');
  writeFileSync(
    conf,
    `# generated by loadtest/tls/bench.mjs
http_port 127.0.0.1:${port} ssl-bump tls-cert=${pki.squidCa} tls-key=${pki.squidKey} generate-host-certificates=on dynamic_cert_mem_cache_size=64MB
sslcrtd_program ${CERTGEN} -s ${sslDb} -M 64MB
sslcrtd_children 8 startup=2 idle=1
acl step1 at_step SslBump1
ssl_bump peek step1
ssl_bump bump all
tls_outgoing_options cafile=${pki.upstreamCa} min-version=1.2
hosts_file /etc/hosts
${squidBaseConfig({ root, name: 'squid' })}`,
  );
  // as root Squid drops to the proxy user: it must read its CA key and write its files
  const ids = proxyUserIds();
  if (process.getuid?.() === 0 && ids) {
    const [uid, gid] = ids;
    await run('chown', ['-R', `${uid}:${gid}`, root]);
    chownSync(pki.squidKey, uid, gid);
    await run('chmod', ['o+rx', dir, pki.root]);
  }
  const parse = await run(SQUID, ['-k', 'parse', '-f', conf]);
  if (parse.code !== 0) throw new Error(`squid -k parse failed:\n${parse.stderr}${parse.stdout}`);
  const handle = startProcess('squid', SQUID, ['-N', '-f', conf], { logDir: root, env: cleanEnv() });
  await waitFor('squid', () => canConnect(port), { handle, timeoutMs: 30_000 });
  return {
    name: 'squid',
    version: version.split('\n')[0].trim(),
    port,
    clientCa: pki.squidCa,
    cpuPids: () => [handle.pid],
    stop: () => handle.stop(),
  };
}

// ---------------------------------------------------------------------------------------------------
// The load: curl, every connection new (no session reuse, Connection: close), each response checked.

const WRITE_OUT = '%{http_code} %{size_download} %{time_total}\\n';

async function curlMany(urls, { proxyPort, ca, parallel }) {
  const args = ['-sS', '--no-sessionid', '-H', 'Connection: close', '--cacert', ca];
  if (proxyPort) args.push('-x', `http://127.0.0.1:${proxyPort}`);
  if (parallel > 1) args.push('--parallel', '--parallel-immediate', '--parallel-max', String(parallel));
  args.push('-w', WRITE_OUT, ...urls.flatMap((url) => ['-o', '/dev/null', url]));
  const started = process.hrtime.bigint();
  const result = await run('curl', args, { env: cleanEnv(), timeoutMs: 600_000 });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const lines = result.stdout.trim().split('\n').filter(Boolean);
  const bad = lines.filter((line) => !/^200 1024 /.test(line));
  if (result.code !== 0 || lines.length !== urls.length || bad.length > 0) {
    throw new Error(
      `curl: exit ${result.code}, ${lines.length}/${urls.length} responses, ${bad.length} not "200 1024": ${bad
        .slice(0, 3)
        .join('; ')} ${result.stderr.split('\n').slice(0, 3).join(' ')}`,
    );
  }
  return { seconds, times: lines.map((line) => Number(line.split(' ')[2]) * 1000) };
}

async function handshakes(stack, names, opts) {
  const urls = names.map((name) => `https://${name}/1k`);
  const before = stack.cpuPids().reduce((sum, pid) => sum + cpuMs(pid), 0);
  const { seconds } = await curlMany(urls, {
    proxyPort: stack.port,
    ca: stack.clientCa,
    parallel: opts.concurrency,
  });
  const cpu = stack.cpuPids().reduce((sum, pid) => sum + cpuMs(pid), 0) - before;
  return { perSecond: urls.length / seconds, cpuMsPer: cpu / urls.length };
}

async function latency(stack, opts, upstreamCa) {
  const names = Array.from({ length: opts.latencySamples }, (_, i) => WARM_NAMES[i % WARM_NAMES.length]);
  const urls = names.map((name) => `https://${name}/1k`);
  const { times } = await curlMany(urls, {
    proxyPort: stack?.port,
    ca: stack ? stack.clientCa : upstreamCa,
    parallel: 1,
  });
  return median(times);
}

async function main() {
  const opts = options();
  if (opts.help) {
    console.log(HELP);
    return 0;
  }
  if (process.getuid?.() !== 0)
    throw new Error('run as root: the benchmark builds its own network namespace');
  for (const file of [SQUID, NGINX, CERTGEN])
    if (!existsSync(file)) throw new Error(`${file} missing: apt-get install squid-openssl nginx-light`);
  for (const built of [
    'services/proxy/dist/main.js',
    'services/tls-mediation/dist/main.js',
    'packages/x509/dist/index.js',
  ])
    if (!existsSync(join(REPO, built))) throw new Error(`${built} missing: npm run build first`);
  // every name resolves to loopback through the namespace's own /etc/hosts, for both proxies
  // (Squid reads hosts_file, Moat getaddrinfo), without touching the host's
  if (!process.env.MOAT_BENCH_NETNS) return rerunInNetns('moat-bench-tls', { hostNames: allNames(opts) });

  installCleanupHandlers();
  if (opts.keepTemp) keepTempDirs();
  const dir = makeTempDir('moat-tls-bench-');
  log(`temp dir ${dir}; minting ${allNames(opts).length} origin certificates`);
  const pki = await makePki(dir, allNames(opts));
  const origin = await startTlsOrigin(dir, pki);
  const stacks = { moat: await startMoatStack(dir, pki), squid: await startSquidBump(dir, pki) };
  log(`moat: ${stacks.moat.version}; squid: ${stacks.squid.version}`);

  // both must bump (their own CA on the client side) and refuse what they should before measuring
  for (const stack of Object.values(stacks)) {
    await curlMany(['https://origin.bench.test/1k'], {
      proxyPort: stack.port,
      ca: stack.clientCa,
      parallel: 1,
    });
    await curlMany(
      WARM_NAMES.map((n) => `https://${n}/1k`),
      { proxyPort: stack.port, ca: stack.clientCa, parallel: 4 },
    );
  }
  const blocked = await run(
    'curl',
    [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-x',
      `http://127.0.0.1:${stacks.moat.port}`,
      '--cacert',
      stacks.moat.clientCa,
      'https://blocked.bench.test/1k',
    ],
    { env: cleanEnv() },
  );
  if (blocked.stdout !== '403')
    throw new Error(`Moat must block blocked.bench.test inside TLS (got ${blocked.stdout})`);

  const runs = [];
  for (let round = 0; round < opts.rounds; round++) {
    const order = round % 2 === 0 ? ['moat', 'squid'] : ['squid', 'moat'];
    for (const name of order) {
      const stack = stacks[name];
      log(`round ${round + 1}/${opts.rounds}: ${name} cold (${opts.handshakes} new names)`);
      const cold = await handshakes(stack, coldNames(round, name, opts.handshakes), opts);
      runs.push({ test: 'cold', stack: name, variant: '', ...cold });
      log(`round ${round + 1}/${opts.rounds}: ${name} warm`);
      const warmNames = Array.from({ length: opts.handshakes }, (_, i) => WARM_NAMES[i % WARM_NAMES.length]);
      const warm = await handshakes(stack, warmNames, opts);
      runs.push({ test: 'warm', stack: name, variant: '', ...warm });
      runs.push({ test: 'latency', stack: name, variant: '', ms: await latency(stack, opts) });
      await sleep(500);
    }
    runs.push({
      test: 'latency',
      stack: 'origin',
      variant: '',
      ms: await latency(undefined, opts, pki.upstreamCa),
    });
  }
  const direct = median(runs.filter((r) => r.test === 'latency' && r.stack === 'origin').map((r) => r.ms));
  for (const r of runs) if (r.test === 'latency' && r.stack !== 'origin') r.addedMs = r.ms - direct;

  const metrics = [
    {
      test: 'cold',
      variant: '',
      label: 'new handshakes/s, cold certificate cache',
      unit: '1/s',
      better: 'higher',
      value: (r) => r.perSecond,
    },
    {
      test: 'warm',
      variant: '',
      label: 'new handshakes/s, warm certificate cache',
      unit: '1/s',
      better: 'higher',
      value: (r) => r.perSecond,
    },
    {
      test: 'cold',
      variant: '',
      label: 'CPU per handshake, cold',
      unit: 'ms',
      better: 'lower',
      value: (r) => r.cpuMsPer,
    },
    {
      test: 'warm',
      variant: '',
      label: 'CPU per handshake, warm',
      unit: 'ms',
      better: 'lower',
      value: (r) => r.cpuMsPer,
    },
    {
      test: 'latency',
      variant: '',
      label: 'request on a new connection, warm',
      unit: 'ms',
      better: 'lower',
      value: (r) => r.ms,
    },
    {
      test: 'latency',
      variant: '',
      label: 'latency added to a direct request',
      unit: 'ms',
      better: 'lower',
      value: (r) => r.addedMs,
    },
  ];
  const rows = summarise(runs, metrics, { candidate: 'moat', baseline: 'squid' });
  const result = {
    date: new Date().toISOString(),
    options: opts,
    versions: { moat: stacks.moat.version, squid: stacks.squid.version },
    rows,
    runs,
  };
  if (opts.json) console.log(JSON.stringify(result, null, 2));
  else {
    console.log(
      `\n## Bumped HTTPS: Moat vs Squid ssl-bump (${opts.rounds} rounds, ${opts.handshakes} connections each, concurrency ${opts.concurrency})\n`,
    );
    console.log(`Moat: ${stacks.moat.version}. Squid: ${stacks.squid.version}.\n`);
    console.log(
      markdownTable(rows, { candidate: 'moat', baseline: 'squid', titles: { moat: 'Moat', squid: 'Squid' } }),
    );
  }
  for (const stack of Object.values(stacks)) await stack.stop();
  await origin.stop();
  return 0;
}

runMain(main, 'bench.mjs');
