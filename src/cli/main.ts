import { Command, CommanderError, Option } from 'commander';
import { EXIT_RUN_FAILED, EXIT_USAGE, FfError, errorMessage } from '../errors.js';
import { LOG_LEVELS, logLevelFromEnv } from '../log-levels.js';
// Commands are loaded when chosen: a run loads only what it uses (the peak RSS of a 10M-candidate
// run is a target), and --help loads none.
import { integerOption, numberOption, sinceOption } from './options.js';
import { packageVersion } from './version.js';
// A name only: the strategy itself comes from the registry, loaded with the command.
import { RECONCILE } from '../../strategies/names.js';

/** `status --limit`: the run history keeps at most 1,000 runs (daemon.historySize). */
const MAX_STATUS_LIMIT = 1000;

const program = new Command('ff-detector')
  .description('Finds users newly enabled for a feature flag and enqueues the backfill each one is missing.')
  .version(packageVersion(), '-V, --version', 'print the version and exit')
  .showHelpAfterError()
  .exitOverride()
  // LOG_LEVEL is checked before any command runs, like --log-level: a bad value is a usage error
  // naming the variable (exit 2), also for the commands that default to another level.
  .hook('preAction', () => {
    logLevelFromEnv();
  });

/** --config and --log-level, which every command takes. */
const basics = (command: Command): Command =>
  command
    .option('-c, --config <file>', 'YAML/JSON config file (env FF_DETECTOR_CONFIG)')
    .addOption(new Option('--log-level <level>', 'log level on stderr (default LOG_LEVEL, else info)').choices(LOG_LEVELS));

/** Which messages of the flag topic to read (sample kafka, investigate kafka). */
const topicSelection = (command: Command, defaultCount: number): Command =>
  command
    .option('--brokers <list>', 'host:port,… (default KAFKA_BROKERS or investigate.brokers)')
    .option('--topic <name>', 'default investigate.topic (feature-flipper-flags)')
    .option('--count <n>', `messages at most (default ${defaultCount})`, numberOption)
    .option('--from-beginning', 'the oldest messages (default)')
    .option('--latest', 'the newest messages across partitions')
    .option('--since <duration|timestamp>', 'from 15m / 2h / 7d ago, or an ISO timestamp', sinceOption)
    .option('--partition <n>', 'one partition only', numberOption)
    .option('--timeout <ms>', 'stop waiting for more messages after this long (default 10000)', numberOption);

/** Where messages go, for the commands that send. */
const sinkOption = (command: Command): Command =>
  command.addOption(new Option('--sink <sink>', 'sqs, or stdout to print the messages even with Valkey state (default: sqs when SQS_QUEUE_URL is set)').choices(['sqs', 'stdout']));

const common = (command: Command): Command =>
  basics(command).option('--flags <path|s3://…>', 'flag rules file').option('--state-file <path>', 'file-backed state journal (when VALKEY_URL is unset)');

sinkOption(common(program.command('detect')))
  .description('run one polling detection now; the last stdout line is the run summary JSON')
  .option('--candidates <path|s3://…>', 'candidate user IDs: one per line, or CSV with --column; gzip detected')
  .option('--column <name>', 'CSV column holding the user ID')
  .option('--dry-run', 'write the messages that would be sent to stdout; change no state')
  .option('--rate-limit <msgs/s>', 'messages per second (default 10)', numberOption)
  .option('--budget <users>', 'max users enqueued this run, 0 = no limit (default 36000)', numberOption)
  .option('--metrics-file <path>', 'write Prometheus metrics of this run there (node_exporter textfile collector)')
  .option('--allow-mass-forget', 'forget however many known users this run finds disabled (releases the forget guard for this run)')
  .action(async (flags) => {
    const { detectCommand } = await import('./detect.js');
    process.exitCode = await detectCommand(flags);
  });

common(program.command('reconcile'))
  .description('re-check every known user against the current rules and forget the disabled (under the forget guard)')
  .option('--dry-run', 'report what would be forgotten; change nothing')
  .option('--allow-mass-forget', 'forget however many it finds disabled (releases the forget guard for this run)')
  .action(async (flags) => {
    const { detectCommand } = await import('./detect.js');
    process.exitCode = await detectCommand(flags, RECONCILE);
  });

common(program.command('check'))
  .description('print, per user, the flag result, whether known, whether loaded_users:{id} exists')
  .argument('<userIds...>')
  .option('--json', 'one JSON object per user instead of a table')
  .action(async (userIds: string[], flags) => {
    const { checkCommand } = await import('./check.js');
    process.exitCode = await checkCommand(userIds, flags);
  });

sinkOption(common(program.command('run')))
  .description('the daemon: poll on the schedule while leading; admin API, metrics, clean shutdown')
  .action(async (flags) => {
    const { runCommand } = await import('./run.js');
    process.exitCode = await runCommand(flags);
  });

sinkOption(basics(program.command('backfill')))
  .description('send one user_load_request per listed user (seed section 1); resumable')
  .option('--user-file <path|s3://…>', 'user IDs: one per line, or CSV with --column; gzip detected (required unless --resume-from)')
  .option('--column <name>', 'CSV column holding the user ID')
  .option('--rate-limit <msgs/s>', 'messages per second (default 10)', numberOption)
  .option('--lookback-days <days>', 'history to request (default 365)', numberOption)
  .option('--dry-run', 'write the messages to stdout as NDJSON; send nothing')
  .option('--queue-url <url>', 'SQS queue (default SQS_QUEUE_URL)')
  // A resume file is the whole list to send: given with --user-file, one of the two would be ignored.
  .addOption(new Option('--resume-from <file>', 'send exactly the users in a resume file written by an earlier run').conflicts('userFile'))
  .option('--resume-file <path>', 'where to write the users not sent (default ./ff-detector-resume-<job>.txt)')
  .action(async (flags) => {
    const { backfillCommand } = await import('./backfill.js');
    process.exitCode = await backfillCommand(flags);
  });

const sample = program.command('sample').description('read raw messages of the flag system, read-only (investigation mode)');

topicSelection(basics(sample.command('kafka')), 100)
  .description('sample the flag topic as NDJSON {topic, partition, offset, timestamp, key, headers, value, valueEncoding}')
  .option('--out <file>', 'write there instead of stdout')
  .action(async (flags) => {
    const { sampleKafkaCommand } = await import('./sample.js');
    process.exitCode = await sampleKafkaCommand(flags);
  });

const investigate = program.command('investigate').description('infer the formats of the flag system’s topic and bucket; judge strategies B and C');

basics(investigate.command('s3'))
  .description('report on the flag bucket: objects, key patterns, content, and a verdict for strategy C')
  .option('--bucket <name>', 'default investigate.bucket')
  .option('--prefix <prefix>', 'only keys under it')
  .option('--max-objects <n>', 'objects listed at most (default 10000)', numberOption)
  .option('--sample-objects <n>', 'objects read at most, those naming the flag first (default 50)', numberOption)
  .addOption(new Option('--format <format>', 'md for people, json for machines').choices(['md', 'json']).default('md'))
  .option('--show-values', 'show user IDs and secret-looking values in examples instead of redacting them')
  .action(async (flags) => {
    const { investigateS3Command } = await import('./investigate.js');
    process.exitCode = await investigateS3Command(flags);
  });

topicSelection(basics(investigate.command('kafka')), 1000)
  .description('report on the flag topic (live, or saved samples with --input) and a verdict for strategy B')
  .option('--input <samples.ndjson>', 'analyse samples saved by `sample kafka` instead of reading the topic')
  .addOption(new Option('--format <format>', 'md for people, json for machines').choices(['md', 'json']).default('md'))
  .option('--show-values', 'show user IDs and secret-looking values in examples instead of redacting them')
  .action(async (flags) => {
    const { investigateKafkaCommand } = await import('./investigate.js');
    process.exitCode = await investigateKafkaCommand(flags);
  });

const watch = program.command('watch').description('run a feed in the foreground, printing its changes and users as NDJSON (trials)');

common(watch.command('kafka'))
  .description('follow the flag topic (strategies.kafkaTopic): each change applied, each user enqueued or (shadow, --dry-run) that would be')
  .option('--dry-run', 'change nothing shared: a consumer group of its own, no offset committed, nothing sent or recorded')
  .option('--until-end', 'exit, with a summary line, once what the topic held at start is applied and its pending users drained')
  .action(async (flags) => {
    const { watchCommand } = await import('./watch.js');
    process.exitCode = await watchCommand('kafka', flags);
  });

common(watch.command('s3'))
  .description('follow the flag bucket (strategies.s3Bucket): each snapshot applied, each user enqueued or (shadow, --dry-run) that would be')
  .option('--dry-run', 'change nothing shared: the feed\'s state in this process, nothing sent or recorded')
  .option('--once', 'one listing cycle, then drain its pending users and exit with a summary line')
  .action(async (flags) => {
    const { watchCommand } = await import('./watch.js');
    process.exitCode = await watchCommand('s3', flags);
  });

common(program.command('status'))
  .description('the newest run summaries recorded in the state store')
  .option('--json', 'one JSON summary per line instead of the table')
  .option('--limit <n>', `how many runs, 1 to ${MAX_STATUS_LIMIT} (default 10)`, integerOption(1, MAX_STATUS_LIMIT))
  .action(async (flags) => {
    const { statusCommand } = await import('./status.js');
    process.exitCode = await statusCommand(flags);
  });

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode === 0 ? 0 : EXIT_USAGE;
  } else {
    // One line a person reads at a glance (a ValidationError adds its list of problems below it).
    process.stderr.write(`ff-detector: error: ${errorMessage(error)}\n`);
    process.exitCode = error instanceof FfError ? error.exitCode : EXIT_RUN_FAILED;
  }
}

// Every client is closed by now; exit without waiting for timers a driver may still hold (the
// Snowflake driver keeps retrying a lost request in the background). Writes to pipes and files
// are synchronous on Linux, so nothing written is lost.
process.exit();
