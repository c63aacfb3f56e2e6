// companyctl broker consume <queue>: apply inbound company changes from a RabbitMQ queue until
// stopped (SIGTERM or Ctrl-C: finish and ack what is held, exit 0).
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export interface ConsumeOptions {
  maxMessages?: string;
  idleExit?: string;
}

export function register(parent: Command, run: Runner): void {
  parent
    .command('consume')
    .description('apply company changes from a RabbitMQ queue (acked after commit) until stopped')
    .argument('<queue>', 'the queue to consume (declared with its dead-letter queue <queue>.dead unless broker.consume.declare is false)')
    .option('--max-messages <n>', 'stop after this many messages (the rest held goes back to the queue)')
    .option('--idle-exit <duration>', 'stop once no message came for this long (e.g. 30s, 5m): drain a queue from cron')
    .addHelpText(
      'after',
      `
Messages: {"op": "upsert" | "delete", "key": "domain" | "lei" | "registration" | "external:<source>",
"company": {...fields as in "company create"...}}, JSON, with a message-id (see README).

Examples:
  companyctl broker consume crm.companies
  companyctl broker consume crm.companies --idle-exit 30s --json
  systemctl kill -s TERM companyctl-consume   # finishes and acks what it holds, exits 0`,
    )
    .action((queue: string, opts: ConsumeOptions, c: Command) => run(c, (ctx) => consumeRun(ctx, queue, opts)));
}

export async function consumeRun(ctx: Context, queue: string, opts: ConsumeOptions): Promise<number> {
  const { CompanyctlError } = await import('../../src/errors.js');
  const { parsePositiveInt, parseDuration } = await import('../../src/io/flags.js');
  const maxMessages = parsePositiveInt(opts.maxMessages, '--max-messages');
  const idleExitMs =
    opts.idleExit === undefined ? undefined : parseDuration('--idle-exit', opts.idleExit, { units: ['ms', 's', 'm', 'h'], bareUnit: 's', min: 1, example: '30s, 5m, 1h' });
  const { parseBrokerConfig, brokerEndpoint, checkBrokerName } = await import('../../src/services/broker-config.js');
  checkBrokerName(queue, 'queue');
  const config = parseBrokerConfig(ctx.config().broker, ctx.paths.configFile);
  if (!config) {
    throw new CompanyctlError('COMPANYCTL_BROKER_NOT_CONFIGURED', `no "broker" section in the config file ${ctx.paths.configFile}`, {
      hint: 'add "broker": {"url": "amqp://user@host:5672/vhost"} (see README, "Message broker")',
    });
  }
  const { runConsumer } = await import('../../src/services/broker-consume.js');
  const { companyDeps, eventsEnv, appLog, failpoint } = await import('../../src/context.js');
  const { dispatchDepsFor } = await import('../../src/services/events.js');
  const { Dispatcher, closeHandlers } = await import('../../src/services/dispatch.js');
  const { withCancellation } = await import('../../src/io/cancellation.js');
  const { writeRecord } = await import('../../src/io/output.js');

  // The password first: a missing one is an error before anything starts.
  const endpoint = await brokerEndpoint(config, ctx.env);
  const dispatchDeps = await dispatchDepsFor(eventsEnv(ctx));
  const dispatcher = new Dispatcher(dispatchDeps);
  ctx.notice(`consuming ${queue} from ${config.url} (Ctrl-C or SIGTERM to stop)`);
  const report = await withCancellation(ctx, `stopping: finishing the messages held`, (signal) =>
    runConsumer(
      {
        company: { ...companyDeps(ctx), actor: `amqp:${queue}` },
        config,
        endpoint: async () => endpoint,
        onCommit: () => dispatcher.kick(),
        log: (entry) => appLog(ctx, entry),
        notice: (m) => ctx.notice(m),
        beforeAck: () => failpoint(ctx, 'broker-before-ack'),
      },
      { queue, signal, maxMessages, idleExitMs },
    ),
  );
  await dispatcher.idle();
  await closeHandlers(dispatchDeps.handlers);
  ctx.notice(`stopped: ${report.received} received, ${report.created} created, ${report.updated} updated, ${report.deleted} deleted, ${report.deadLettered} dead-lettered`);
  await writeRecord(ctx, report);
  return 0;
}
