/**
 * A counting semaphore: at most `limit` holders at once; the others wait, first come first
 * served. A subscription's `maxConcurrency` is one of these around its handler.
 */
export class Semaphore {
  readonly limit: number;
  #held = 0;
  #waiting: Array<() => void> = [];

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) {
      throw new RangeError(`a semaphore's limit is a whole number of at least 1, not ${limit}`);
    }
    this.limit = limit;
  }

  /** How many hold it now. */
  get held(): number {
    return this.#held;
  }

  /** How many wait for it. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Waits for a place; resolves once this caller holds one. */
  acquire(): Promise<void> {
    if (this.#held < this.limit) {
      this.#held += 1;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** Gives a place back (to the next waiter, if any). */
  release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#held -= 1;
  }

  /** Runs `task` holding a place. */
  async run<R>(task: () => Promise<R> | R): Promise<R> {
    await this.acquire();
    try {
      return await task();
    } finally {
      this.release();
    }
  }
}
