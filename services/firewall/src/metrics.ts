/** The firewall's Prometheus metrics. Rule counters are read from nft when /metrics is scraped. */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ApplyOutcome, Firewall } from './firewall.js';

export function createFirewallMetrics(
  registry: Registry,
  firewall: Firewall,
  /** Whether denied flows are being read (asked at scrape time). */
  denyLogUp: () => boolean,
) {
  const rules = new Gauge({
    name: 'moat_firewall_rules',
    help: 'nft rules in the applied table (a policy rule can need several)',
    registers: [registry],
  });
  const setElements = new Gauge({
    name: 'moat_firewall_set_elements',
    help: 'Elements in each address set loaded from a file',
    labelNames: ['set', 'file'],
    registers: [registry],
  });
  const applySeconds = new Gauge({
    name: 'moat_firewall_apply_seconds',
    help: 'Time the last ruleset took to render and to apply',
    labelNames: ['phase'],
    registers: [registry],
  });
  const warnings = new Gauge({
    name: 'moat_firewall_policy_warnings',
    help: 'Things the applied policy asks for that the firewall cannot do yet (see the log)',
    registers: [registry],
  });
  const collectCounter = (field: 'packets' | 'bytes') =>
    async function collect(this: Gauge) {
      this.reset();
      // one nft listing serves both gauges of a scrape
      for (const [rule, counter] of await firewall.counters(5000).catch(() => new Map())) {
        this.set({ rule }, counter[field]);
      }
    };
  new Gauge({
    name: 'moat_firewall_rule_packets',
    help: 'Packets counted by each policy rule (and the built-in default, input, invalid-state, anti-spoofing); not read while file-backed sets hold over 200,000 entries',
    labelNames: ['rule'],
    registers: [registry],
    collect: collectCounter('packets'),
  });
  new Gauge({
    name: 'moat_firewall_rule_bytes',
    help: 'Bytes counted by each policy rule',
    labelNames: ['rule'],
    registers: [registry],
    collect: collectCounter('bytes'),
  });

  const denied = new Counter({
    name: 'moat_firewall_denied_flows_total',
    help: 'Denied flows reported by nflog (logging is limited to 50 per second per rule)',
    labelNames: ['rule'],
    registers: [registry],
  });
  new Gauge({
    name: 'moat_firewall_deny_log_up',
    help: '1 while ulogd reads denied flows from nflog; 0 means denied flows are not reported',
    registers: [registry],
    collect(this: Gauge) {
      this.set(denyLogUp() ? 1 : 0);
    },
  });

  const restored = new Counter({
    name: 'moat_firewall_restored_total',
    help: "Times the recheck found Moat's table gone from the kernel (e.g. nft flush ruleset) and wrote it again",
    registers: [registry],
  });
  const recheckFailures = new Counter({
    name: 'moat_firewall_recheck_failures_total',
    help: 'Rechecks that could not read or restore the table (see the log)',
    registers: [registry],
  });
  return {
    restored: () => restored.inc(),
    recheckFailed: () => recheckFailures.inc(),
    denied(rule: string): void {
      denied.inc({ rule });
    },
    applied(outcome: ApplyOutcome): void {
      rules.set(outcome.ruleCount);
      setElements.reset();
      for (const set of outcome.sets) setElements.set({ set: set.name, file: set.file }, set.elements);
      applySeconds.set({ phase: 'render' }, outcome.renderMs / 1000);
      applySeconds.set({ phase: 'apply' }, outcome.applyMs / 1000);
      warnings.set(outcome.warnings.length);
    },
  };
}
