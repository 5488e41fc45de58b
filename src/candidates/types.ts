/** A line (or row) the source could not turn into a candidate ID. */
export interface RejectedCandidate {
  /** 1-based line or row number within the origin. */
  position: number;
  reason: string;
}

/**
 * Candidates travel in batches of ≈1,000 so nothing ever holds the full list. IDs are trimmed but
 * not yet validated; `positions[i]` is the line of `ids[i]`, for error reports.
 */
export interface CandidateBatch {
  origin: string;
  ids: string[];
  positions: Uint32Array;
  rejected: RejectedCandidate[];
}

/** Where a polling run's candidate user IDs come from. */
export interface CandidateSource {
  readonly description: string;
  batches(signal?: AbortSignal): AsyncIterable<CandidateBatch>;
}
