// Colour, decided once: off with --no-color, NO_COLOR (any non-empty value), TERM=dumb or a
// stream that is not a terminal; FORCE_COLOR turns it on. Every coloured word goes through here.
import type { ChalkInstance } from 'chalk';
import type { Context } from '../context.js';

type Stream = 'stdout' | 'stderr';

export function colourLevel(ctx: Pick<Context, 'env' | 'globals' | 'io'>, stream: Stream = 'stdout'): 0 | 1 | 2 | 3 {
  if (ctx.globals.color === false || ctx.env.NO_COLOR) return 0;
  const forced = ctx.env.FORCE_COLOR;
  if (forced !== undefined && forced !== '') return forced === '0' || forced === 'false' ? 0 : (Math.min(3, Math.max(1, Number(forced) || 1)) as 1 | 2 | 3);
  if (ctx.env.TERM === 'dumb') return 0;
  return (stream === 'stdout' ? ctx.io.stdoutIsTTY : ctx.io.stderrIsTTY) ? 1 : 0;
}

/** A chalk for one stream at the level above (chalk's own default looks at process.stdout only). */
export async function colours(ctx: Pick<Context, 'env' | 'globals' | 'io'>, stream: Stream = 'stdout'): Promise<ChalkInstance> {
  const { Chalk } = await import('chalk');
  return new Chalk({ level: colourLevel(ctx, stream) });
}

/** The terminal's width in columns: COLUMNS, then the stream's own, else 80. */
export function terminalWidth(ctx: Pick<Context, 'env' | 'io'>, stream: Stream = 'stdout'): number {
  const fromEnv = Number(ctx.env.COLUMNS);
  if (Number.isInteger(fromEnv) && fromEnv >= 20) return fromEnv;
  const cols = (ctx.io[stream] as { columns?: number }).columns;
  return typeof cols === 'number' && cols >= 20 ? cols : 80;
}
