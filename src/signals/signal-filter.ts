import { z } from 'zod';
import { decimalInteger } from '../common/wire-schemas.js';
import { SignalSide, SignalStatus } from '../generated/prisma/enums.js';
import { marketSchema, symbolSchema } from './signal.dto.js';
import type { SignalView } from './signal.types.js';

/**
 * What a subscriber narrows its stream to. Each present criterion must match; an absent one
 * matches everything. Filters only narrow what the tier allows, never widen it.
 */
export interface SignalFilter {
  symbols?: ReadonlySet<string>;
  markets?: ReadonlySet<string>;
  providers?: ReadonlySet<string>;
  sides?: ReadonlySet<SignalSide>;
  minConfidence?: number;
  /** `true`: premium signals only; `false`: regular signals only. */
  premium?: boolean;
  /**
   * A version matches by its own status, wherever it is read (live, replay, listing): a socket that
   * follows only `active` receives no version that takes a signal out of that set (docs/protocol.md).
   */
  statuses?: ReadonlySet<SignalStatus>;
}

const list = <T extends z.ZodType>(item: T) => z.array(item).min(1).max(100, 'at most 100 values');

/** The wire form (`subscribe` request, listing query). */
export const signalFilterSchema = z
  .strictObject({
    symbols: list(symbolSchema).optional(),
    markets: list(marketSchema).optional(),
    providers: list(z.uuid({ message: 'must be a provider id (UUID)' })).optional(),
    sides: list(z.enum(SignalSide)).optional(),
    min_confidence: z.number().int().min(0).max(100).optional(),
    premium: z.boolean().optional(),
    statuses: list(z.enum(SignalStatus)).optional(),
  })
  .transform((wire): SignalFilter => ({
    ...(wire.symbols && { symbols: new Set(wire.symbols) }),
    ...(wire.markets && { markets: new Set(wire.markets) }),
    ...(wire.providers && { providers: new Set(wire.providers) }),
    ...(wire.sides && { sides: new Set(wire.sides) }),
    ...(wire.min_confidence !== undefined && { minConfidence: wire.min_confidence }),
    ...(wire.premium !== undefined && { premium: wire.premium }),
    ...(wire.statuses && { statuses: new Set(wire.statuses) }),
  }));

const QUERY_LISTS = ['symbols', 'markets', 'providers', 'sides', 'statuses'] as const;

/**
 * The filter written as query parameters (the connection URL, the listing):
 * `?symbols=A,B&markets=..&providers=..&sides=..&statuses=..&min_confidence=N&premium=true|false`,
 * validated like `subscribe`; `status` is taken as another name for `statuses`. `error` names the
 * parameter.
 */
export function filterFromQuery(params: URLSearchParams): { filter?: SignalFilter; error?: { field: string; message: string } } {
  const wire: Record<string, unknown> = {};
  for (const name of QUERY_LISTS) {
    const value = params.get(name);
    if (value !== null) wire[name] = value.split(',').filter(Boolean);
  }
  const status = params.get('status');
  if (status !== null) wire.statuses = [...new Set([...((wire.statuses as string[]) ?? []), ...status.split(',').filter(Boolean)])];
  const minConfidence = params.get('min_confidence');
  if (minConfidence !== null) {
    const parsed = decimalInteger().safeParse(minConfidence);
    if (!parsed.success) return { error: { field: 'min_confidence', message: parsed.error.issues[0]!.message } };
    wire.min_confidence = parsed.data;
  }
  const premium = params.get('premium');
  if (premium !== null) {
    if (premium !== 'true' && premium !== 'false') return { error: { field: 'premium', message: 'must be true or false' } };
    wire.premium = premium === 'true';
  }
  if (Object.keys(wire).length === 0) return {};
  const parsed = signalFilterSchema.safeParse(wire);
  if (parsed.success) return { filter: parsed.data };
  const issue = parsed.error.issues[0]!;
  return { error: { field: issue.path.join('.'), message: issue.message } };
}

export function matchesFilter(filter: SignalFilter | undefined, signal: SignalView): boolean {
  if (!filter) return true;
  return (
    (!filter.symbols || filter.symbols.has(signal.symbol)) &&
    (!filter.markets || filter.markets.has(signal.market)) &&
    (!filter.providers || filter.providers.has(signal.provider)) &&
    (!filter.sides || filter.sides.has(signal.side)) &&
    (filter.minConfidence === undefined || signal.confidence >= filter.minConfidence) &&
    (filter.premium === undefined || signal.premium === filter.premium) &&
    (!filter.statuses || filter.statuses.has(signal.status))
  );
}

/** The filter back in wire form, for acks. */
export function filterToWire(filter: SignalFilter | undefined): Record<string, unknown> {
  if (!filter) return {};
  return {
    ...(filter.symbols && { symbols: [...filter.symbols] }),
    ...(filter.markets && { markets: [...filter.markets] }),
    ...(filter.providers && { providers: [...filter.providers] }),
    ...(filter.sides && { sides: [...filter.sides] }),
    ...(filter.minConfidence !== undefined && { min_confidence: filter.minConfidence }),
    ...(filter.premium !== undefined && { premium: filter.premium }),
    ...(filter.statuses && { statuses: [...filter.statuses] }),
  };
}
