/**
 * A compact, read-only map from ASCII keys to 32-bit values, laid out for few cache misses:
 *
 * - `records`: every key with its value, back to back: key length (u16), value (u32), key bytes.
 * - `tags`: one byte per hash slot: 0 when empty, else 7 bits of the key's hash, with the high
 *   bit set for a keyless marker (below).
 * - `slots`: per hash slot, the offset of its record, or a keyless marker's full 32-bit hash.
 *
 * Open addressing with linear probing. A probe for an absent key usually reads only `tags`
 * (1.4 bytes per key, so it tends to stay in cache); a present key costs one read of `slots` and
 * one of its record, which holds the value too.
 *
 * Keyless markers are keys stored as their hash only, all with one shared value: the domain
 * table uses them for unlisted parent domains, where a rare hash collision only costs a wasted
 * probe, never a wrong answer.
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
const MARKER_TAG_BIT = 0x80;

/** The transferable arrays of a {@link KeyTable}. */
export interface KeyTableData {
  records: Uint8Array;
  tags: Uint8Array;
  slots: Uint32Array;
  /** Keys with a record. */
  count: number;
  /** Keyless markers. */
  markers: number;
  /** The value of every keyless marker. */
  markerValue: number;
}

/** Where a finished hash starts probing: its top 24 bits scaled onto [0, capacity), no modulo. */
function slotOf(hash: number, capacity: number): number {
  return Math.floor(((hash >>> 8) * capacity) / 16777216);
}

/** The tag of a key with a record: 7 low bits of its hash, never 0 (which marks an empty slot). */
function tagOf(hash: number): number {
  return hash & 0x7f || 1;
}

function lowerAscii(code: number): number {
  return code >= 65 && code <= 90 ? code + 32 : code;
}

function readValue(records: Uint8Array, record: number): number {
  return (
    (records[record + 2] | (records[record + 3] << 8) | (records[record + 4] << 16)) +
    records[record + 5] * 0x1000000
  );
}

/** An empty table's data. */
export function emptyKeyTable(): KeyTableData {
  return {
    records: new Uint8Array(0),
    tags: new Uint8Array(MIN_CAPACITY),
    slots: new Uint32Array(MIN_CAPACITY),
    count: 0,
    markers: 0,
    markerValue: 0,
  };
}

/** Read side: finds keys by a hash computed over (part of) a string. */
export class KeyTable {
  readonly #records: Uint8Array;
  readonly #tags: Uint8Array;
  readonly #slots: Uint32Array;
  readonly #markerValue: number;
  /** Keys with a record. */
  readonly size: number;
  /** Keyless markers. */
  readonly markers: number;

  constructor(data: KeyTableData) {
    this.#records = data.records;
    this.#tags = data.tags;
    this.#slots = data.slots;
    this.#markerValue = data.markerValue;
    this.size = data.count;
    this.markers = data.markers;
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
    const markerTag = tag | MARKER_TAG_BIT;
    let slot = slotOf(hash, capacity);
    let marked = false;
    for (;;) {
      const found = tags[slot];
      if (found === 0) return marked ? this.#markerValue : -1;
      if (found === tag) {
        const record = this.#slots[slot];
        if (this.#equals(record, text, start, end)) return readValue(this.#records, record);
      } else if (found === markerTag && this.#slots[slot] === hash) {
        // a marker with this hash; keep looking, a key with a record and the same hash wins
        marked = true;
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
  /** Each key's hash, by insertion order: growing and finishing need not hash again. */
  #hashes = new Uint32Array(1 << 11);
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
    if (this.#count > this.#hashes.length) this.#hashes = grown(this.#hashes, this.#hashes.length * 2);
    this.#hashes[this.#count - 1] = hash;
    this.#tags[slot] = tag;
    this.#slots[slot] = record;
    this.added = true;
    if (this.#count > capacity * BUILD_LOAD) this.#rehash(capacity * 2);
    return record;
  }

  /** Makes room for `keys` more keys and `bytes` more key bytes without growing step by step. */
  reserve(keys: number, bytes: number): void {
    const count = this.#count + keys;
    if (count > this.#tags.length * BUILD_LOAD) this.#rehash(Math.ceil(count / BUILD_LOAD));
    if (count > this.#hashes.length) this.#hashes = grown(this.#hashes, count);
    const used = this.#used + bytes + keys * HEADER;
    if (used > this.#records.length) this.#records = grown(this.#records, Math.min(MAX_RECORD_BYTES, used));
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

  /** Calls visit(record, keyStart, keyLength, hash) for every key, in insertion order. */
  forEach(visit: (record: number, keyStart: number, keyLength: number, hash: number) => void): void {
    const records = this.#records;
    for (let record = 0, ordinal = 0; record < this.#used; ordinal++) {
      const length = records[record] | (records[record + 1] << 8);
      visit(record, record + HEADER, length, this.#hashes[ordinal]);
      record += HEADER + length;
    }
  }

  /** The record bytes (a view, valid until the next insert). */
  get records(): Uint8Array {
    return this.#records;
  }

  /**
   * The finished table, each array in its own ArrayBuffer so it can be transferred. Keys whose
   * value is `markerValue` become keyless markers when one is given.
   */
  finish(markerValue?: number): KeyTableData {
    const capacity = Math.max(MIN_CAPACITY, Math.ceil(this.#count / FINAL_LOAD));
    const tags = new Uint8Array(capacity);
    const slots = new Uint32Array(capacity);
    const isMarker = (record: number) => markerValue !== undefined && this.valueAt(record) === markerValue;
    let kept = 0;
    this.forEach((record, _keyStart, keyLength) => {
      if (!isMarker(record)) kept += HEADER + keyLength;
    });
    const records = new Uint8Array(kept);
    let used = 0;
    let markers = 0;
    this.forEach((record, keyStart, keyLength, hash) => {
      let slot = slotOf(hash, capacity);
      while (tags[slot] !== 0) slot = slot + 1 === capacity ? 0 : slot + 1;
      if (isMarker(record)) {
        tags[slot] = tagOf(hash) | MARKER_TAG_BIT;
        slots[slot] = hash;
        markers++;
        return;
      }
      records.set(this.#records.subarray(record, keyStart + keyLength), used);
      tags[slot] = tagOf(hash);
      slots[slot] = used;
      used += HEADER + keyLength;
    });
    return {
      records,
      tags,
      slots,
      count: this.#count - markers,
      markers,
      markerValue: markerValue ?? 0,
    };
  }

  #append(bytes: Uint8Array, start: number, length: number): number {
    if (length > MAX_KEY_LENGTH) {
      throw new RangeError(`a ${this.what} entry is longer than ${MAX_KEY_LENGTH} bytes`);
    }
    const needed = this.#used + HEADER + length;
    if (needed > MAX_RECORD_BYTES) throw new RangeError(`too many ${this.what}: more than 4 GiB of entries`);
    if (needed > this.#records.length) {
      // grow by half: lists are big, so doubling would waste tens of megabytes at the end
      const length = Math.max(Math.ceil(this.#records.length * 1.5), needed);
      this.#records = grown(this.#records, Math.min(MAX_RECORD_BYTES, length));
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
    this.forEach((record, _keyStart, _keyLength, hash) => {
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

/** A copy of the array with room for `length` elements. */
function grown<T extends Uint8Array | Uint32Array>(array: T, length: number): T {
  const bigger = new (array.constructor as new (length: number) => T)(length);
  bigger.set(array);
  return bigger;
}
