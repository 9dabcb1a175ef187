/**
 * A compact, read-only map from ASCII keys to 32-bit values, laid out for few cache misses:
 *
 * - `records`: every key with its value, back to back: key length (u16), value (u32), key bytes.
 * - `tags`: one byte per hash slot, 0 when empty, else 8 bits of the key's hash (never 0).
 * - `slots`: per hash slot, the offset of its record (open addressing, linear probing).
 *
 * A probe for an absent key usually reads only `tags` (1.4 bytes per key, so it stays in cache);
 * a present key costs one read of `slots` and one of its record, which holds the value too.
 *
 * Why a hash index and not a sorted array with binary search: at 2 million keys a binary search
 * makes ~21 dependent reads into tens of megabytes, most of them cache misses, and a host needs
 * one search per label.
 */
import { finishHash, HASH_SEED, hashBytes, hashStep } from './hash.js';

/** Hash slots per key in a finished table: linear probing stays short below ~0.7. */
const FINAL_LOAD = 0.7;
/** The builder grows its index at this load, keeping inserts fast. */
const BUILD_LOAD = 0.5;
const MIN_CAPACITY = 8;
/** Bytes before the key in a record: length (u16) and value (u32). */
const HEADER = 6;
/** Longest key (the record stores its length in 16 bits). */
export const MAX_KEY_LENGTH = 0xffff;
/** Most record bytes: slots hold 32-bit offsets. */
const MAX_RECORD_BYTES = 0xffffffff;

/** The transferable arrays of a {@link KeyTable}. */
export interface KeyTableData {
  records: Uint8Array;
  tags: Uint8Array;
  slots: Uint32Array;
  /** Number of keys. */
  count: number;
}

/** Where a finished hash starts probing: its top 24 bits scaled onto [0, capacity), no modulo. */
function slotOf(hash: number, capacity: number): number {
  return Math.floor(((hash >>> 8) * capacity) / 16777216);
}

/** The tag for a finished hash: its low 8 bits, with 0 (which marks an empty slot) mapped to 1. */
function tagOf(hash: number): number {
  return hash & 0xff || 1;
}

function lowerAscii(code: number): number {
  return code >= 65 && code <= 90 ? code + 32 : code;
}

function readValue(records: Uint8Array, record: number): number {
  return (records[record + 2] | (records[record + 3] << 8) | (records[record + 4] << 16)) + records[record + 5] * 0x1000000;
}

/** An empty table's data. */
export function emptyKeyTable(): KeyTableData {
  return { records: new Uint8Array(0), tags: new Uint8Array(MIN_CAPACITY), slots: new Uint32Array(MIN_CAPACITY), count: 0 };
}

/** Read side: finds keys by a hash computed over (part of) a string. */
export class KeyTable {
  readonly #records: Uint8Array;
  readonly #tags: Uint8Array;
  readonly #slots: Uint32Array;
  /** Number of keys. */
  readonly size: number;

  constructor(data: KeyTableData) {
    this.#records = data.records;
    this.#tags = data.tags;
    this.#slots = data.slots;
    this.size = data.count;
  }

  /** Bytes held by the arrays. */
  get byteLength(): number {
    return this.#records.byteLength + this.#tags.byteLength + this.#slots.byteLength;
  }

  /**
   * The value of the key equal to text[start, end) (ASCII, compared case-insensitively), or -1.
   * `hash` is {@link finishHash} of the {@link hashStep} state over that range, right to left.
   */
  find(text: string, start: number, end: number, hash: number): number {
    const tags = this.#tags;
    const capacity = tags.length;
    const tag = tagOf(hash);
    let slot = slotOf(hash, capacity);
    for (;;) {
      const found = tags[slot];
      if (found === 0) return -1;
      if (found === tag) {
        const record = this.#slots[slot];
        if (this.#equals(record, text, start, end)) return readValue(this.#records, record);
      }
      slot = slot + 1 === capacity ? 0 : slot + 1;
    }
  }

  /** The value of the whole text as a key, or -1; hashes it first. */
  findText(text: string): number {
    let state = HASH_SEED;
    for (let i = text.length - 1; i >= 0; i--) state = hashStep(state, lowerAscii(text.charCodeAt(i)));
    return this.find(text, 0, text.length, finishHash(state));
  }

  #equals(record: number, text: string, start: number, end: number): boolean {
    const records = this.#records;
    if ((records[record] | (records[record + 1] << 8)) !== end - start) return false;
    for (let i = start, k = record + HEADER; i < end; i++, k++) {
      if (lowerAscii(text.charCodeAt(i)) !== records[k]) return false;
    }
    return true;
  }
}

/**
 * Write side (runs in the build worker): inserts byte keys without duplicates; each key has a
 * 32-bit value. Grows by doubling; {@link finish} trims to size and rebuilds the index.
 */
export class KeyTableBuilder {
  #records = new Uint8Array(1 << 16);
  #used = 0;
  #count = 0;
  #tags = new Uint8Array(1 << 12);
  #slots = new Uint32Array(1 << 12);
  /** True when the last {@link insert} added a new key. */
  added = false;

  constructor(private readonly what: string) {}

  /** Number of distinct keys. */
  get count(): number {
    return this.#count;
  }

  /** Inserts bytes[start, start + length) unless present; returns the key's record. */
  insert(bytes: Uint8Array, start: number, length: number): number {
    const hash = hashBytes(bytes, start, start + length);
    const tag = tagOf(hash);
    const capacity = this.#tags.length;
    let slot = slotOf(hash, capacity);
    for (;;) {
      const found = this.#tags[slot];
      if (found === 0) break;
      if (found === tag && this.#equals(this.#slots[slot], bytes, start, length)) {
        this.added = false;
        return this.#slots[slot];
      }
      slot = slot + 1 === capacity ? 0 : slot + 1;
    }
    const record = this.#append(bytes, start, length);
    this.#tags[slot] = tag;
    this.#slots[slot] = record;
    this.added = true;
    if (this.#count > capacity * BUILD_LOAD) this.#rehash(capacity * 2);
    return record;
  }

  valueAt(record: number): number {
    return readValue(this.#records, record);
  }

  setValue(record: number, value: number): void {
    const records = this.#records;
    records[record + 2] = value & 0xff;
    records[record + 3] = (value >>> 8) & 0xff;
    records[record + 4] = (value >>> 16) & 0xff;
    records[record + 5] = (value >>> 24) & 0xff;
  }

  /** Calls visit(record, keyStart, keyLength) for every key, in insertion order. */
  forEach(visit: (record: number, keyStart: number, keyLength: number) => void): void {
    const records = this.#records;
    for (let record = 0; record < this.#used; ) {
      const length = records[record] | (records[record + 1] << 8);
      visit(record, record + HEADER, length);
      record += HEADER + length;
    }
  }

  /** The record bytes (a view, valid until the next insert). */
  get records(): Uint8Array {
    return this.#records;
  }

  /** The finished table; each array has its own ArrayBuffer, so it can be transferred. */
  finish(): KeyTableData {
    this.#rehash(Math.max(MIN_CAPACITY, Math.ceil(this.#count / FINAL_LOAD)));
    return { records: this.#records.slice(0, this.#used), tags: this.#tags, slots: this.#slots, count: this.#count };
  }

  #append(bytes: Uint8Array, start: number, length: number): number {
    if (length > MAX_KEY_LENGTH) throw new RangeError(`a ${this.what} entry is longer than ${MAX_KEY_LENGTH} bytes`);
    const needed = this.#used + HEADER + length;
    if (needed > MAX_RECORD_BYTES) throw new RangeError(`too many ${this.what}: more than 4 GiB of entries`);
    if (needed > this.#records.length) {
      const bigger = new Uint8Array(Math.min(MAX_RECORD_BYTES, Math.max(this.#records.length * 2, needed)));
      bigger.set(this.#records.subarray(0, this.#used));
      this.#records = bigger;
    }
    const record = this.#used;
    this.#records[record] = length & 0xff;
    this.#records[record + 1] = length >>> 8;
    this.#records.set(bytes.subarray(start, start + length), record + HEADER);
    this.#used = needed;
    this.#count++;
    return record;
  }

  #rehash(capacity: number): void {
    const tags = new Uint8Array(capacity);
    const slots = new Uint32Array(capacity);
    this.forEach((record, keyStart, keyLength) => {
      const hash = hashBytes(this.#records, keyStart, keyStart + keyLength);
      let slot = slotOf(hash, capacity);
      while (tags[slot] !== 0) slot = slot + 1 === capacity ? 0 : slot + 1;
      tags[slot] = tagOf(hash);
      slots[slot] = record;
    });
    this.#tags = tags;
    this.#slots = slots;
  }

  #equals(record: number, bytes: Uint8Array, start: number, length: number): boolean {
    const records = this.#records;
    if ((records[record] | (records[record + 1] << 8)) !== length) return false;
    const from = record + HEADER;
    for (let i = 0; i < length; i++) if (records[from + i] !== bytes[start + i]) return false;
    return true;
  }
}
