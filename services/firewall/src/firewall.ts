/**
 * The firewall's kernel side: renders a policy into Moat's nftables table and applies it as one
 * transaction. nft applies a script all or nothing, so a refused ruleset leaves the running one in
 * place; the caller gets nft's own message. Nothing outside Moat's table is read or written.
 */
import { readFileSync } from 'node:fs';
import type { Policy } from '@moat/policy';
import { applyScript, checkScript, type NftOptions, queryJson } from './nft.js';
import { type AddressFileCache, digestFromComment, type ReadFile } from './render/addresses.js';
import {
  DEFAULT_TABLE,
  type RenderedRuleset,
  type RenderOptions,
  renderRuleset,
  type TableState,
  updateScript,
} from './render/ruleset.js';

export interface ApplyOutcome {
  /** False when the rendered ruleset equals the one already applied (nothing was sent to nft). */
  changed: boolean;
  ruleCount: number;
  sets: RenderedRuleset['sets'];
  warnings: string[];
  renderMs: number;
  applyMs: number;
}

/** Above this many file-backed set elements, rule counters are not read (see Firewall.counters). */
export const COUNTER_SET_ELEMENT_LIMIT = 200_000;

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
  /** What this process last applied: the chains, and each named set's digest. */
  private applied: { chains: string; chainNames: string[]; sets: Map<string, string> } | undefined;
  private readonly fileCache: AddressFileCache = new Map();
  private setElements = 0;
  private lastCounters: { at: number; counters: Map<string, RuleCounter> } | undefined;
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
      fileCache: this.fileCache,
    });
    const rendering = performance.now();
    const sets = new Map(rendered.namedSets.map((set) => [set.name, set.digest]));
    const applied = this.applied;
    const changed =
      applied === undefined ||
      applied.chains !== rendered.chains ||
      applied.sets.size !== sets.size ||
      [...sets].some(([name, digest]) => applied.sets.get(name) !== digest);
    if (changed) {
      if (this.options.mode === 'check') await checkScript(rendered.script, this.options.nft);
      else {
        // The first apply of this process reads what the kernel holds (a restart keeps the
        // ruleset, and sets whose content is unchanged need not be reloaded); later ones know it.
        const current = applied
          ? { chains: applied.chainNames, sets: applied.sets }
          : await this.tableState();
        const script = current ? updateScript(rendered, current) : rendered.script;
        await applyScript(script, this.options.nft);
        this.applied = { chains: rendered.chains, chainNames: rendered.chainNames, sets };
        this.setElements = rendered.sets.reduce((sum, set) => sum + set.elements, 0);
        this.lastCounters = undefined;
      }
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

  /**
   * Moat's table as the kernel holds it (chains, and sets without their elements), or undefined when
   * there is none. Only `list sets` and `list chains`: any listing of rules makes nft fetch every set
   * element first, about 30 s for a million.
   */
  private async tableState(): Promise<TableState | undefined> {
    type Listing<K extends string> = {
      nftables?: Partial<Record<K, { table: string; name: string; comment?: string }>>[];
    };
    const [sets, chains] = await Promise.all([
      queryJson(['-t', 'list', 'sets', 'inet'], this.options.nft) as Promise<Listing<'set'>>,
      queryJson(['list', 'chains', 'inet'], this.options.nft) as Promise<Listing<'chain'>>,
    ]);
    const ours = <T extends { table: string }>(item: T | undefined): item is T => item?.table === this.table;
    const chainNames = (chains.nftables ?? []).map((item) => item.chain).filter(ours);
    const setList = (sets.nftables ?? []).map((item) => item.set).filter(ours);
    if (chainNames.length === 0 && setList.length === 0 && !(await this.tableExists())) return undefined;
    return {
      chains: chainNames.map((chain) => chain.name),
      sets: new Map(setList.map((set) => [set.name, digestFromComment(set.comment)])),
    };
  }

  private async tableExists(): Promise<boolean> {
    const tables = (await queryJson(['list', 'tables', 'inet'], this.options.nft)) as {
      nftables?: { table?: { name: string } }[];
    };
    return (tables.nftables ?? []).some((item) => item.table?.name === this.table);
  }

  /**
   * Whether the kernel still holds the table this process applied: the table, its chains and its
   * sets with their digests. Something else can take it away (`nft flush ruleset`, as a reloaded
   * /etc/nftables.conf does), which would open the gateway; when it is gone, the next apply writes
   * it in full. Rules inside the chains are not compared: listing rules makes nft fetch every set
   * element. Always true in check mode and before the first apply.
   */
  async inForce(): Promise<boolean> {
    const applied = this.applied;
    if (this.options.mode === 'check' || applied === undefined) return true;
    const kernel = await this.tableState();
    const held =
      kernel !== undefined &&
      kernel.chains.length === applied.chainNames.length &&
      applied.chainNames.every((name) => kernel.chains.includes(name)) &&
      kernel.sets.size === applied.sets.size &&
      [...applied.sets].every(([name, digest]) => kernel.sets.get(name) === digest);
    if (!held) this.applied = undefined;
    return held;
  }

  /** Deletes Moat's table (a no-op when it is not there, or in check mode). */
  async remove(): Promise<void> {
    if (this.options.mode === 'check') return;
    await applyScript(`table inet ${this.table}\ndelete table inet ${this.table}\n`, this.options.nft);
    this.applied = undefined;
  }

  /**
   * Packet and byte counters per policy rule, summed over the nft rules that implement it; at most
   * `maxAgeMs` old. Listing rules makes nft fetch every set element, so while file-backed sets hold
   * more than COUNTER_SET_ELEMENT_LIMIT entries the counters are not read (empty map).
   */
  async counters(maxAgeMs = 0): Promise<Map<string, RuleCounter>> {
    if (this.options.mode === 'check' || this.applied === undefined) return new Map();
    if (this.setElements > COUNTER_SET_ELEMENT_LIMIT) return new Map();
    const cached = this.lastCounters;
    if (cached && performance.now() - cached.at <= maxAgeMs) return cached.counters;
    const counters = await this.readCounters();
    this.lastCounters = { at: performance.now(), counters };
    return counters;
  }

  private async readCounters(): Promise<Map<string, RuleCounter>> {
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
