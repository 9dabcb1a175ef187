// first: V8 settings that must precede everything else (see service-kit/runtime.ts)
import '@moat/service-kit/runtime';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { publishEvent } from '@moat/bus';
import { ConfigError } from '@moat/config';
import { createLogger } from '@moat/log';
import type { PolicyRecord } from '@moat/policy';
import { every, serialQueue, startServiceKit } from '@moat/service-kit';
import { Registry } from 'prom-client';
import { loadFirewallConfig } from './config.js';
import { DenyLogReader, deniedFlowEvent } from './deny-log.js';
import { type ApplyOutcome, Firewall } from './firewall.js';
import { createFirewallMetrics } from './metrics.js';
import { listSessions, parseSessionFilter } from './sessions.js';

const VERSION = process.env.MOAT_VERSION ?? '0.1.0';

async function main() {
  const config = loadFirewallConfig();
  const log = createLogger({ service: 'firewall', level: config.logLevel });
  const registry = new Registry();
  const interception =
    config.interceptHttpPort > 0 && config.interceptTlsPort > 0
      ? { httpPort: config.interceptHttpPort, tlsPort: config.interceptTlsPort }
      : undefined;
  const inNetns = config.netns ? ['ip', 'netns', 'exec', config.netns] : [];
  const firewall = new Firewall({
    mode: config.mode,
    nft: { command: [...inNetns, 'nft'] },
    render: { table: config.table, logGroup: config.logGroup, ...(interception ? { interception } : {}) },
  });
  let last: (ApplyOutcome & { version: number }) | undefined;
  // policy changes and rechecks both drive nft: one at a time
  const serial = serialQueue();
  let inForce: PolicyRecord | undefined;
  let denyLog: DenyLogReader | undefined;
  const denyLogState = () => denyLog?.state ?? 'off';
  const metrics = createFirewallMetrics(registry, firewall, () => denyLogState() === 'running');

  const kit = await startServiceKit({
    service: 'firewall',
    version: VERSION,
    config,
    log,
    registry,
    // A refused ruleset throws: nft applied nothing, the running table stays, and the kit reports
    // the failure (moatctl apply --wait prints nft's message).
    applyPolicy: async (record) => {
      const outcome = await serial(() => firewall.apply(record.policy));
      inForce = record;
      metrics.applied(outcome);
      last = { ...outcome, version: record.version };
      for (const warning of outcome.warnings) log.warn({ version: record.version }, warning);
      log.info(
        {
          version: record.version,
          changed: outcome.changed,
          rules: outcome.ruleCount,
          sets: outcome.sets,
          renderMs: Math.round(outcome.renderMs),
          applyMs: Math.round(outcome.applyMs),
          mode: config.mode,
        },
        outcome.changed ? `ruleset for policy v${record.version} applied` : 'ruleset unchanged',
      );
    },
    queries: {
      sessions: (args) => listSessions(parseSessionFilter(args), [...inNetns, 'conntrack']),
    },
    details: () => ({
      mode: config.mode,
      table: `inet ${config.table}`,
      ...(config.netns ? { netns: config.netns } : {}),
      interception: interception ?? 'off',
      denyLog: denyLogState(),
      ...(last
        ? {
            rules: last.ruleCount,
            sets: last.sets,
            warnings: last.warnings,
            applyMs: Math.round(last.applyMs),
          }
        : {}),
    }),
  });
  if (config.ulogd === 'off') log.warn('MOAT_FIREWALL_ULOGD=off: denied flows are not reported as events');
  else {
    const reader = new DenyLogReader({
      command: [...inNetns, config.ulogd],
      group: config.logGroup,
      runDir: config.runDir ?? mkdtempSync(join(tmpdir(), 'moat-firewall-')),
      log,
      onDenied: (flow) => {
        metrics.denied(flow.rule);
        try {
          publishEvent(kit.bus, deniedFlowEvent(flow, config.instanceId, last?.version));
        } catch (err) {
          log.error({ err: (err as Error).message, flow }, 'could not publish a denied-flow event');
        }
      },
    });
    denyLog = reader;
    await reader.start();
    kit.onShutdown({ name: 'stop ulogd', run: () => reader.stop() });
  }

  const stopRechecks = every(config.recheckSeconds, async () => {
    const record = inForce;
    if (!record) return;
    try {
      await serial(async () => {
        if (await firewall.inForce()) return;
        const outcome = await firewall.apply(record.policy);
        metrics.restored();
        metrics.applied(outcome);
        log.warn(
          { version: record.version },
          `Moat's table was gone from the kernel (nft flush ruleset?); policy v${record.version} written again`,
        );
      });
    } catch (err) {
      metrics.recheckFailed();
      log.error(
        { version: record.version, err: (err as Error).message },
        'firewall recheck could not restore the table',
      );
    }
  });
  kit.onShutdown({ name: 'stop firewall rechecks', run: stopRechecks });

  // Stopping the service leaves the last ruleset in the kernel: a restarting firewall must not
  // open the gateway. `moat lab down` deletes the namespace, and with it the table.
  kit.log.info({ httpPort: kit.httpPort, mode: config.mode, table: config.table }, 'firewall ready');
}

main().catch((err: unknown) => {
  console.error(
    err instanceof ConfigError ? err.message : `firewall failed to start: ${(err as Error).message}`,
  );
  process.exit(1);
});
