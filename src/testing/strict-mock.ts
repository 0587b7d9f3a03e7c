import { vi, type Mock } from 'vitest';

type Methods<T> = { [K in keyof T as T[K] extends (...args: never[]) => unknown ? K : never]: T[K] };
export type StrictMock<T> = T & { [K in keyof Methods<T>]: Mock<Extract<T[K], (...args: never[]) => unknown>> };

/**
 * A mock whose every method must be given an implementation: an unexpected call fails the test
 * instead of quietly returning undefined.
 */
export function strictMock<T extends object>(implementations: Partial<Methods<T>> = {}): StrictMock<T> {
  const mocks = new Map<PropertyKey, Mock>();
  for (const [name, implementation] of Object.entries(implementations)) {
    mocks.set(name, vi.fn(implementation as (...args: unknown[]) => unknown));
  }
  return new Proxy({} as StrictMock<T>, {
    get(_target, property) {
      if (property === 'then') return undefined;
      const mock = mocks.get(property);
      if (mock) return mock;
      return () => {
        throw new Error(`unexpected call to ${String(property)}()`);
      };
    },
  });
}
