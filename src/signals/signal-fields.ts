import { z } from 'zod';
import type { Prisma, Signal } from '../generated/prisma/client.js';
import { SignalSide, SignalStatus, Tier } from '../generated/prisma/enums.js';
import { utcTimestamp } from '../common/wire-schemas.js';
import type { SignalEvent } from './signal.types.js';

/** Each column type's value in a record: its wire form. */
interface SqlValues {
  uuid: string;
  text: string;
  int: number;
  /** seq: a counter far below 2^53. */
  bigint: number;
  /** A canonical decimal string ("42150.5"): no float ever touches a price. */
  numeric: string;
  'numeric[]': string[];
  /** ISO 8601 in UTC, to the millisecond. */
  timestamptz: string;
  '"Tier"': Tier;
  '"SignalSide"': SignalSide;
  '"SignalStatus"': SignalStatus;
}

interface Field {
  /** The column's type, as the writer's SQL declares it. */
  readonly sql: keyof SqlValues;
  readonly nullable?: true;
  /** Synced by the provider: what the content hash fingerprints. */
  readonly content?: true;
  /** Set when the signal is created; an update never writes it. */
  readonly fixed?: true;
  /** The key on the wire, where it is not the column's name. */
  readonly wire?: string;
  /** The value on the wire, where it is not the stored one, and its schema. */
  readonly show?: (value: never) => unknown;
  readonly shown?: z.ZodType;
}

/**
 * A signal's fields, described once: the columns of `signals`, in order. Everything else derives
 * from this list: the record and content types, the wire form (`SignalView`, also the payload stored
 * with each revision), the reading of a Prisma row, the writer's SQL, and the content hash.
 *
 * The order is the order of keys on the wire and of the values the content hash takes. Each version
 * is stored with its hash, and a re-send is recognised by it: reordering the `content` fields, or
 * adding or removing one, changes the hash of unchanged content, and every re-sent signal would look
 * amended (a new version and seq). `sync-plan.spec.ts` pins the hash.
 */
const SIGNAL_FIELDS = {
  id: { sql: 'uuid', fixed: true },
  seq: { sql: 'bigint' },
  provider_id: { sql: 'uuid', fixed: true, wire: 'provider' },
  external_id: { sql: 'text', fixed: true },
  symbol: { sql: 'text', content: true },
  market: { sql: 'text', content: true },
  side: { sql: '"SignalSide"', content: true },
  entry: { sql: 'numeric', content: true },
  stop_loss: { sql: 'numeric', nullable: true, content: true },
  take_profits: { sql: 'numeric[]', content: true },
  confidence: { sql: 'int', content: true },
  timeframe: { sql: 'text', content: true },
  note: { sql: 'text', nullable: true, content: true },
  /** Stored as a tier (an elite-only signal needs no schema change), shown as whether it is premium. */
  min_tier: { sql: '"Tier"', content: true, wire: 'premium', show: (tier: Tier) => tier !== 'free', shown: z.boolean() },
  status: { sql: '"SignalStatus"', content: true },
  version: { sql: 'int' },
  issued_at: { sql: 'timestamptz', content: true },
  received_at: { sql: 'timestamptz' },
  expires_at: { sql: 'timestamptz', nullable: true, content: true },
} as const satisfies Record<string, Field>;

type Fields = typeof SIGNAL_FIELDS;
type SignalColumn = keyof Fields;
type ValueOf<F extends Field> = SqlValues[F['sql']] | (F extends { nullable: true } ? null : never);
type ContentColumn = { [C in SignalColumn]: Fields[C] extends { content: true } ? C : never }[SignalColumn];

/** A stored signal version, by column, in wire values: what the writer sends to `signals`. */
export type SignalRecord = { -readonly [C in SignalColumn]: ValueOf<Fields[C]> };

/** What a sync writes into a signal: the `content` columns. */
export type SignalContent = Pick<SignalRecord, ContentColumn>;

type WireKey<C extends SignalColumn> = Fields[C] extends { wire: infer K extends string } ? K : C;
type WireValue<C extends SignalColumn> = Fields[C] extends { show: (value: never) => infer V } ? V : ValueOf<Fields[C]>;

/** A signal on the wire (HTTP and WebSocket): its record, with `provider` and `premium` shown. */
export type SignalView = { -readonly [C in SignalColumn as WireKey<C>]: WireValue<C> };

/** The columns in order, each with its description. */
export const SIGNAL_COLUMNS = Object.entries(SIGNAL_FIELDS).map(([name, field]: [string, Field]) => ({
  name: name as SignalColumn,
  ...field,
}));

/** The columns the content hash takes, in its order. */
export const CONTENT_COLUMNS = SIGNAL_COLUMNS.filter((column) => column.content).map(({ name }) => name as ContentColumn);

/** Per column, computed once: its key and value on the wire. */
const WIRE = SIGNAL_COLUMNS.map(({ name, wire, show }) => ({
  column: name,
  key: wire ?? name,
  show: show as ((value: unknown) => unknown) | undefined,
}));

/** The wire form of a record. */
export function viewOf(record: SignalRecord): SignalView {
  const view: Record<string, unknown> = {};
  for (const { column, key, show } of WIRE) view[key] = show ? show(record[column]) : record[column];
  return view as SignalView;
}

/** Per content column, computed once: its key on the wire. */
const CONTENT_WIRE = WIRE.filter(({ column }) => (CONTENT_COLUMNS as SignalColumn[]).includes(column));

/**
 * A stored version's content, from its wire form and its tier (the wire shows only whether a
 * signal is premium, so the tier is taken as stored). What an expiry writes again, with its status.
 */
export function contentOfView(signal: SignalView, minTier: Tier): SignalContent {
  const content: Record<string, unknown> = {};
  for (const { column, key } of CONTENT_WIRE) content[column] = column === 'min_tier' ? minTier : signal[key as keyof SignalView];
  return content as SignalContent;
}

/** Each column type's wire value, as a schema (the OpenAPI document's `Signal`). */
const WIRE_SCHEMAS: { [T in keyof SqlValues]: z.ZodType<SqlValues[T]> } = {
  uuid: z.uuid(),
  text: z.string(),
  int: z.int(),
  bigint: z.int().min(0),
  numeric: z.string().regex(/^\d+(\.\d+)?$/),
  'numeric[]': z.array(z.string().regex(/^\d+(\.\d+)?$/)),
  timestamptz: utcTimestamp,
  '"Tier"': z.enum(Tier),
  '"SignalSide"': z.enum(SignalSide),
  '"SignalStatus"': z.enum(SignalStatus),
};

/** A signal on the wire, as a schema: the columns in order, with their wire keys and values. */
export const signalViewSchema = z.object(
  Object.fromEntries(
    SIGNAL_COLUMNS.map((column) => {
      const value = column.shown ?? WIRE_SCHEMAS[column.sql];
      return [column.wire ?? column.name, column.nullable ? value.nullable() : value];
    }),
  ),
) as unknown as z.ZodType<SignalView>;

/** Prisma's value of a column type, in wire form (null stays null); the other types are the same. */
const FROM_PRISMA: { [T in keyof SqlValues]?: (value: never) => SqlValues[T] } = {
  bigint: (value: bigint) => Number(value),
  numeric: (value: Prisma.Decimal) => value.toFixed(),
  'numeric[]': (values: Prisma.Decimal[]) => values.map((value) => value.toFixed()),
  timestamptz: (value: Date) => value.toISOString(),
};

/** Prisma names each column's field in camelCase: a column without one does not compile. */
type CamelCase<S extends string> = S extends `${infer Head}_${infer Tail}` ? `${Head}${Capitalize<CamelCase<Tail>>}` : S;
const camelCase = <S extends string>(name: S) => name.replace(/_(.)/g, (_, letter: string) => letter.toUpperCase()) as CamelCase<S>;

/** Per column, computed once: where a Prisma row holds it, and how it becomes its wire value. */
const FROM_ROW = SIGNAL_COLUMNS.map(({ name, sql }) => ({
  column: name,
  field: camelCase(name),
  convert: FROM_PRISMA[sql] as ((value: unknown) => unknown) | undefined,
}));

/** A `signals` row as read by Prisma, as a record. */
export function recordOf(row: Signal): SignalRecord {
  const record: Record<string, unknown> = {};
  for (const { column, field, convert } of FROM_ROW) {
    const value = row[field];
    record[column] = convert && value !== null ? convert(value) : value;
  }
  return record as SignalRecord;
}

/** A stored version as the bus and the gateway take it: the view, with what gates its delivery. */
export function eventOf(signal: SignalView, minTier: Tier): SignalEvent {
  return { type: signal.version > 1 ? 'signal_update' : 'signal', seq: signal.seq, minTier, signal };
}
