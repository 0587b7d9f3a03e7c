/**
 * What one user's receipts cover: every signal sent to the user's clients with a seq in
 * `(from, seq]`, acknowledged by the receipt for `seq` that arrived `at`.
 *
 * A receipt covers what its connection was sent from where the connection started: the position
 * it resumed from, or the seq current at its welcome. A receipt an earlier connection owed,
 * arriving on the next one at or below where that one started, acknowledges everything up to its
 * seq: such a claim `joins` whatever range is already known below it (a resume position alone is
 * not one: a client may start from a position it never reached). Ranges that meet join; after a gap (a client that started afresh
 * past the known range) the newer range replaces the older.
 */
export interface Coverage {
  from: number;
  seq: number;
  at: number;
  /** An owed receipt's claim: joins any known range that ends below it. */
  joins: boolean;
}

export function extendCoverage(known: Coverage | undefined, next: Coverage): Coverage {
  if (!known) return next;
  if (next.seq <= known.seq) return known;
  if (next.joins || next.from <= known.seq)
    return { from: Math.min(known.from, next.from), seq: next.seq, at: next.at, joins: known.joins };
  return next;
}
