// When each observer first saw each value, on this process's one clock
// (performance.now()), and a way to wait until every observer has.
import { performance } from 'node:perf_hooks'

export class Sightings {
  readonly #seen = new Map<string, Map<string, number>>()
  #waiters: Array<() => void> = []

  constructor (observers: readonly string[]) {
    for (const o of observers) this.#seen.set(o, new Map())
  }

  /** records the first time `observer` saw `value` */
  saw (observer: string, value: string, at = performance.now()): void {
    const seen = this.#seen.get(observer)
    if (seen === undefined || seen.has(value)) return
    seen.set(value, at)
    const waiters = this.#waiters
    this.#waiters = []
    for (const w of waiters) w()
  }

  at (observer: string, value: string): number | undefined {
    return this.#seen.get(observer)?.get(value)
  }

  /** the observers that have not seen `value` */
  missing (value: string): string[] {
    return [...this.#seen].filter(([, m]) => !m.has(value)).map(([o]) => o)
  }

  /** resolves true once every observer saw `value`, false after `timeoutMs` */
  async allSaw (value: string, timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs
    for (;;) {
      if ([...this.#seen.values()].every((m) => m.has(value))) return true
      const left = deadline - performance.now()
      if (left <= 0) return false
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.#waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }
}
