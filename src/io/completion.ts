// Shell completion scripts generated from the command tree itself (commands, flags, and the
// values of flags with fixed choices), so they never drift from the real commands.
import type { Command, Option } from 'commander';

interface Node {
  path: string;
  subcommands: string[];
  flags: string[];
  /** flag -> its fixed values, for flags that take one of a list. */
  choices: Record<string, string[]>;
  /** flags that take a value (a file, a name, ...): the shell offers file names. */
  valued: string[];
  description: string;
}

function flagsOf(options: readonly Option[]): { flags: string[]; choices: Record<string, string[]>; valued: string[] } {
  const flags: string[] = [];
  const choices: Record<string, string[]> = {};
  const valued: string[] = [];
  for (const o of options) {
    if (o.hidden) continue;
    const names = [o.long, o.short].filter((n): n is string => !!n);
    flags.push(...names);
    if (o.required || o.optional) {
      valued.push(...names);
      if (o.argChoices) for (const n of names) choices[n] = [...o.argChoices];
    }
  }
  return { flags, choices, valued };
}

/** Every command path ("" is the root) with what may follow it. */
export function commandTree(program: Command): Node[] {
  const globals = flagsOf(program.options);
  const nodes: Node[] = [];
  const walk = (cmd: Command, path: string) => {
    const own = path === '' ? globals : flagsOf(cmd.options);
    nodes.push({
      path,
      subcommands: cmd.commands.map((c) => c.name()),
      flags: [...new Set([...own.flags, ...globals.flags, '--help'])],
      choices: { ...globals.choices, ...own.choices },
      valued: [...new Set([...own.valued, ...globals.valued])],
      description: cmd.description(),
    });
    for (const c of cmd.commands) walk(c, path ? `${path} ${c.name()}` : c.name());
  };
  walk(program, '');
  return nodes;
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export function bashScript(nodes: Node[]): string {
  const words = nodes.map((n) => `    ${q(n.path)}) echo ${q([...n.subcommands, ...n.flags].join(' '))} ;;`).join('\n');
  const values = nodes
    .flatMap((n) => Object.entries(n.choices).map(([f, v]) => `    ${q(`${n.path}|${f}`)}) echo ${q(v.join(' '))} ;;`))
    .join('\n');
  const valued = nodes.flatMap((n) => n.valued.map((f) => q(`${n.path}|${f}`))).join('|') || "''";
  const paths = nodes.filter((n) => n.path).map((n) => q(n.path)).join('|');
  return `# companyctl completion for bash: add to ~/.bashrc
#   source <(companyctl completion bash)
__companyctl_words() {
  case "$1" in
${words}
  esac
}
__companyctl_values() {
  case "$1" in
${values}
  esac
}
__companyctl_takes_value() {
  case "$1" in
    ${valued}) return 0 ;;
  esac
  return 1
}
__companyctl_is_command() {
  case "$1" in
    ${paths}) return 0 ;;
  esac
  return 1
}
_companyctl() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" path="" w i next
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    [[ "$w" == -* ]] && continue
    next="\${path:+$path }$w"
    __companyctl_is_command "$next" && path="$next"
  done
  local values
  values="$(__companyctl_values "$path|$prev")"
  if [[ -n "$values" ]]; then
    COMPREPLY=($(compgen -W "$values" -- "$cur"))
  elif __companyctl_takes_value "$path|$prev"; then
    COMPREPLY=($(compgen -f -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$(__companyctl_words "$path")" -- "$cur"))
  fi
}
complete -o default -F _companyctl companyctl
`;
}

export function zshScript(nodes: Node[]): string {
  return `#compdef companyctl
# companyctl completion for zsh: add to ~/.zshrc
#   source <(companyctl completion zsh)
autoload -U +X bashcompinit && bashcompinit
${bashScript(nodes).split('\n').filter((l) => !l.startsWith('#')).join('\n')}`;
}

export function fishScript(nodes: Node[]): string {
  const out = [
    '# companyctl completion for fish: save as ~/.config/fish/completions/companyctl.fish',
    '#   companyctl completion fish > ~/.config/fish/completions/companyctl.fish',
    `set -g __companyctl_commands ${nodes.filter((n) => n.path).map((n) => q(n.path)).join(' ')}`,
    'function __companyctl_path',
    '  set -l path',
    '  for w in (commandline -opc)[2..-1]',
    "    string match -q -- '-*' $w; and continue",
    "    set -l next (string join ' ' $path $w)",
    '    contains -- $next $__companyctl_commands; and set path $path $w',
    '  end',
    "  string join ' ' $path",
    'end',
    'function __companyctl_at',
    '  set -l p (__companyctl_path)',
    '  test "$p" = "$argv[1]"',
    'end',
    'complete -c companyctl -f',
  ];
  for (const n of nodes) {
    const when = `-n "__companyctl_at '${n.path}'"`;
    for (const c of n.subcommands) {
      const sub = nodes.find((x) => x.path === (n.path ? `${n.path} ${c}` : c));
      out.push(`complete -c companyctl ${when} -a ${q(c)} -d ${q(sub?.description.split('\n')[0] ?? '')}`);
    }
    for (const f of n.flags.filter((x) => x.startsWith('--'))) {
      const values = n.choices[f];
      const arg = values ? ` -x -a ${q(values.join(' '))}` : n.valued.includes(f) ? ' -r -F' : '';
      out.push(`complete -c companyctl ${when} -l ${q(f.slice(2))}${arg}`);
    }
  }
  return `${out.join('\n')}\n`;
}
