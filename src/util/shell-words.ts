// What a command string means without running a shell: whether it is plain words (then it can be
// exec'd as an argv, exactly as `sh -c` would run it) and which words the shell runs itself.

/**
 * Words the shell runs itself (keywords, and builtins with no program of the same name on a usual
 * system): a command starting with one names no program, and needs the shell.
 */
export const SHELL_OWN: ReadonlySet<string> = new Set(['exec', 'umask', 'cd', 'set', 'unset', 'export', 'readonly', 'trap', '.', 'source', 'eval', 'exit', 'return', 'shift', 'read', 'wait', 'alias', 'unalias', 'ulimit', 'local', 'getopts', 'hash', 'type', 'command', 'builtin', 'times', ':', 'if', 'then', 'while', 'until', 'for', 'case', 'do', '{', '!']);

// Characters that mean nothing to the shell inside a word: no quoting, expansion, globbing,
// redirection, comment, tilde or separator.
const PLAIN_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * The argv of a command string made only of plain words, its first a program (not an assignment,
 * not one of the shell's own words); undefined when it needs a shell.
 */
export function plainArgv(command: string): string[] | undefined {
  const words = command.trim().split(/[ \t]+/);
  const first = words[0];
  if (!first || first.includes('=') || SHELL_OWN.has(first)) return undefined;
  return words.every((w) => PLAIN_WORD.test(w)) ? words : undefined;
}
