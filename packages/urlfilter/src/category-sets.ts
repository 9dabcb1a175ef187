/**
 * Interns sets of category ids. Every table entry stores one 16-bit set id, so an entry listed in
 * several categories costs no more than one listed in one.
 */

const MAX_SETS = 0xffff;

export class CategorySetInterner {
  /** Set id → sorted category ids. */
  readonly sets: number[][] = [];
  readonly #ids = new Map<string, number>();
  readonly #unions = new Map<number, number>();

  constructor() {
    // set 0 is the empty set (NO_CATEGORIES in the domain table)
    this.idOf([]);
  }

  /** The id of the set holding exactly these category ids. */
  idOf(categoryIds: readonly number[]): number {
    const sorted = [...new Set(categoryIds)].sort((a, b) => a - b);
    const key = sorted.join(',');
    let id = this.#ids.get(key);
    if (id === undefined) {
      if (this.sets.length >= MAX_SETS) {
        throw new RangeError(`more than ${MAX_SETS} distinct combinations of URL categories`);
      }
      id = this.sets.length;
      this.sets.push(sorted);
      this.#ids.set(key, id);
    }
    return id;
  }

  /** The id of the union of two sets (memoised: a build merges the same pairs millions of times). */
  union(a: number, b: number): number {
    if (a === b) return a;
    const key = a < b ? a * 0x10000 + b : b * 0x10000 + a;
    let id = this.#unions.get(key);
    if (id === undefined) {
      id = this.idOf([...(this.sets[a] ?? []), ...(this.sets[b] ?? [])]);
      this.#unions.set(key, id);
    }
    return id;
  }
}
