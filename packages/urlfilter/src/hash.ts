/**
 * The one hash function shared by table building (over bytes) and lookups (over string char codes).
 *
 * It runs right to left: walking a host from its last character, the running state after each
 * label boundary is the hash of that suffix, so every suffix of `a.b.example.com` is hashed in a
 * single pass over the host.
 */

/** FNV-1a offset basis: the state before any character. */
export const HASH_SEED = 0x811c9dc5;

/** Feeds one character code (0-127; callers lowercase first) into the running state. */
export function hashStep(state: number, code: number): number {
  return Math.imul(state ^ code, 0x01000193);
}

/**
 * Finishes a running state into a well-mixed unsigned 32-bit value (murmur3's fmix32): FNV alone
 * leaves the high bits weak, and the table takes its slot from the high bits.
 */
export function finishHash(state: number): number {
  let h = state ^ (state >>> 16);
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Hash of bytes[start, end), the same value a lookup computes for the equal (lowercase) string. */
export function hashBytes(bytes: Uint8Array, start: number, end: number): number {
  let state = HASH_SEED;
  for (let i = end - 1; i >= start; i--) state = hashStep(state, bytes[i]);
  return finishHash(state);
}
