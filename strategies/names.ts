/**
 * The registered strategies' names, apart from their modules: the CLI's entry point names one
 * without loading any strategy (commands load what they use), and the names are what the run
 * summaries, the metrics and the config (daemon.strategy) carry.
 */
export const POLLING = 'polling';
export const RECONCILE = 'reconcile';
export const KAFKA_TOPIC = 'kafka-topic';
export const S3_BUCKET = 's3-bucket';
