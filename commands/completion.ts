// companyctl completion bash|zsh|fish: prints a completion script made from the command tree.
import { Argument, type Command } from 'commander';
import type { Runner } from '../src/cli.js';
import type { Context } from '../src/context.js';

export function register(program: Command, run: Runner): void {
  program
    .command('completion')
    .description('print a shell completion script (commands, flags, flag values)')
    .addArgument(new Argument('<shell>', 'the shell').choices(['bash', 'zsh', 'fish']))
    .addHelpText(
      'after',
      `
Examples:
  source <(companyctl completion bash)                     # in ~/.bashrc
  source <(companyctl completion zsh)                      # in ~/.zshrc
  companyctl completion fish > ~/.config/fish/completions/companyctl.fish`,
    )
    .action((shell: 'bash' | 'zsh' | 'fish', _opts: unknown, c: Command) => run(c, (ctx) => completionRun(ctx, shell)));
}

export async function completionRun(ctx: Context, shell: 'bash' | 'zsh' | 'fish'): Promise<number> {
  const { buildProgram } = await import('../src/cli.js');
  const { bashScript, commandTree, fishScript, zshScript } = await import('../src/io/completion.js');
  // The whole tree, every group's subcommands included; its actions are never run.
  const nodes = commandTree(buildProgram(async () => undefined));
  ctx.io.stdout.write({ bash: bashScript, zsh: zshScript, fish: fishScript }[shell](nodes));
  return 0;
}
