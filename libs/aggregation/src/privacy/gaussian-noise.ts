import { randomFillSync } from 'node:crypto';
import { seededRandom } from '@fl/datasets';

/**
 * Standard normal draws from a seeded uniform generator (mulberry32) by the
 * Box-Muller transform: z0 = sqrt(-2 ln u1) cos(2 pi u2), z1 = ... sin(...).
 * Reproducible under a seed, which the tests and the fixtures rely on. A
 * deployment that needs unpredictable noise seeds it from a secure source
 * (crypto.randomInt) per round.
 */
export class GaussianNoise {
  private readonly uniform: () => number;
  private spare = 0;
  private hasSpare = false;

  /** A seed (reproducible: tests, fixtures) or a source of uniform draws in [0, 1). */
  constructor(seed: number | (() => number)) {
    this.uniform = typeof seed === 'number' ? seededRandom(seed) : seed;
  }

  /**
   * Noise nobody can predict or replay: uniform draws of 53 bits from the
   * operating system's cryptographic generator. A seeded generator has 2^32
   * streams, few enough to search for the one that removes the noise; tasks
   * use this one.
   */
  static secure(): GaussianNoise {
    const pool = new Uint32Array(2048);
    let next = pool.length;
    return new GaussianNoise(() => {
      if (next === pool.length) {
        randomFillSync(pool);
        next = 0;
      }
      const hi = pool[next++] >>> 5; // 27 bits
      const lo = pool[next++] >>> 6; // 26 bits
      return (hi * 67108864 + lo) / 9007199254740992;
    });
  }

  /** One N(0, 1) draw. */
  next(): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return this.spare;
    }
    // 1 - u lies in (0, 1], so the logarithm is finite.
    const u1 = 1 - this.uniform();
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    const a = 2 * Math.PI * u2;
    this.spare = r * Math.sin(a);
    this.hasSpare = true;
    return r * Math.cos(a);
  }

  /** Adds N(0, stddev^2) to every value. */
  addTo(values: Float64Array | Float32Array, stddev: number): void {
    if (!(stddev >= 0)) throw new Error(`noise standard deviation must be >= 0, got ${stddev}`);
    if (stddev === 0) return;
    for (let i = 0; i < values.length; i++) values[i] += stddev * this.next();
  }
}
