/**
 * The firewall's kernel side: renders a policy into Moat's nftables table and applies it as one
 * transaction. nft applies a script all or nothing, so a refused ruleset leaves the running one in
 * place; the caller gets nft's own message. Nothing outside Moat's table is read or written.
 */
import { readFileSync } from 'node:fs';
import type { Policy } from '@moat/policy';
import { applyScript, checkScript, type NftOptions, queryJson } from './nft.js';
import type { ReadFile } from './render/addresses.js';
import { DEFAULT_TABLE, type RenderedRuleset, type RenderOptions, renderRuleset } from './render/ruleset.js';

export interface ApplyOutcome {
  /** False when the rendered ruleset equals the one already applied (nothing was sent to nft). */
  changed: boolean;
  ruleCount: number;
  sets: RenderedRuleset['sets'];
  warnings: string[];
  renderMs: number;
  applyMs: number;
}

export interface RuleCounter {
  packets: number;
  bytes: number;
}

export interface FirewallOptions {
  /** `check` asks nft whether it would accept each ruleset and changes nothing (default `apply`). */
  mode?: 'apply' | 'check';
  nft?: NftOptions;
  render?: Omit<RenderOptions, 'readFile'>;
  readFile?: ReadFile;
}

export class Firewall {
  private applied: string | undefined;
  readonly table: string;

  constructor(private readonly options: FirewallOptions = {}) {
    this.table = options.render?.table ?? DEFAULT_TABLE;
  }

  /**
   * Renders and applies `policy`. Throws AddressFileError (an address file is unreadable or bad) or
   * NftError (nft refused the ruleset); either way the running ruleset is untouched.
   */
  async apply(policy: Policy): Promise<ApplyOutcome> {
    const started = performance.now();
    const rendered = renderRuleset(policy, {
      ...this.options.render,
      readFile: this.options.readFile ?? ((path) => readFileSync(path, 'utf8')),
    });
    const rendering = performance.now();
    const changed = rendered.script !== this.applied;
    if (changed) {
      if (this.options.mode === 'check') await checkScript(rendered.script, this.options.nft);
      else await applyScript(rendered.script, this.options.nft);
      this.applied = rendered.script;
    }
    return {
      changed,
      ruleCount: rendered.ruleCount,
      sets: rendered.sets,
      warnings: rendered.warnings,
      renderMs: rendering - started,
      applyMs: performance.now() - rendering,
    };
  }

  /** Deletes Moat's table (a no-op when it is not there, or in check mode). */
  async remove(): Promise<void> {
    if (this.options.mode === 'check') return;
    await applyScript(`table inet ${this.table}\ndelete table inet ${this.table}\n`, this.options.nft);
    this.applied = undefined;
  }

  /** Packet and byte counters per policy rule, summed over the nft rules that implement it. */
  async counters(): Promise<Map<string, RuleCounter>> {
    if (this.options.mode === 'check' || this.applied === undefined) return new Map();
    const listing = (await queryJson(['list', 'table', 'inet', this.table], this.options.nft)) as {
      nftables?: { rule?: { comment?: string; expr?: Record<string, unknown>[] } }[];
    };
    const counters = new Map<string, RuleCounter>();
    for (const item of listing.nftables ?? []) {
      const rule = item.rule;
      const name = rule?.comment?.startsWith('rule ') ? rule.comment.slice(5) : undefined;
      if (!rule || name === undefined) continue;
      for (const expr of rule.expr ?? []) {
        const counter = expr.counter as RuleCounter | undefined;
        if (!counter) continue;
        const sum = counters.get(name) ?? { packets: 0, bytes: 0 };
        sum.packets += counter.packets;
        sum.bytes += counter.bytes;
        counters.set(name, sum);
      }
    }
    return counters;
  }
}
