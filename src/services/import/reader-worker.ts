// Worker-thread entry: runs the import's read stage (read.ts) off the main thread and posts
// its events. Flow control by credits: the main thread grants one per chunk it has taken, so
// at most a few chunks wait in memory (back-pressure onto the parser).
import { parentPort, workerData } from 'node:worker_threads';
import { isCompanyctlError } from '../../errors.js';
import { runPipeline, type PipelineOptions } from './read.js';

const port = parentPort!;
const { options, credits: initial } = workerData as { options: PipelineOptions; credits: number };
let credits = initial as number;
let wake: (() => void) | undefined;
port.on('message', (m: { credit?: number }) => {
  credits += m.credit ?? 0;
  wake?.();
});

async function main(): Promise<void> {
  try {
    for await (const ev of runPipeline(options, process.stdin)) {
      if (ev.type === 'chunk') {
        while (credits <= 0) await new Promise<void>((r) => (wake = r));
        credits--;
      }
      port.postMessage(ev);
    }
  } catch (e) {
    const err = isCompanyctlError(e) ? { ...e.toJSON(), known: true } : { code: 'COMPANYCTL_INTERNAL', message: (e as Error)?.message ?? String(e), known: false, stack: (e as Error)?.stack };
    port.postMessage({ type: 'error', error: err });
  }
  port.close();
}
void main();
