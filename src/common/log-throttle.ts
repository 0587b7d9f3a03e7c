/**
 * Wraps a log call so that it runs at most once per `intervalMs`; the calls in between are
 * dropped. For a condition that can repeat thousands of times a second (a full server refusing
 * upgrades, a process out of file descriptors): one line says it, not a flood.
 */
export function throttled<A extends unknown[]>(
  intervalMs: number,
  log: (...args: A) => void,
  now: () => number = () => performance.now(),
): (...args: A) => void {
  let last = Number.NEGATIVE_INFINITY;
  return (...args: A) => {
    const at = now();
    if (at - last < intervalMs) return;
    last = at;
    log(...args);
  };
}
