import { openInput, type InputDeps } from '../inputs/open-input.js';
import { readCsvColumn } from './csv-source.js';
import { splitLines } from './line-source.js';
import type { CandidateBatch, CandidateSource } from './types.js';

export interface FileSourceOptions {
  /** Local path or s3:// URI; gzip is detected from the content. */
  location: string;
  /** CSV column holding the IDs; unset for one ID per line. */
  column?: string | null | undefined;
  batchSize: number;
}

/** Candidates from a maintained file: newline-delimited IDs or a CSV column, maybe gzipped. */
export class FileCandidateSource implements CandidateSource {
  readonly description: string;

  constructor(
    private readonly options: FileSourceOptions,
    private readonly deps: InputDeps = {},
  ) {
    this.description = options.column ? `${options.location} (CSV column ${options.column})` : options.location;
  }

  batches(): AsyncIterable<CandidateBatch> {
    const { location, column, batchSize } = this.options;
    const bytes = openInput(location, this.deps);
    return column ? readCsvColumn(bytes, location, column, batchSize) : splitLines(bytes, location, batchSize);
  }
}
