// Which external tools (promtool, python3, go, curl, ...) a test can use.
// Under CI=true a missing tool fails the test, since .ci/install.d is meant to
// provide it; elsewhere the test is skipped and says what it could not run.
import { spawnSync } from 'node:child_process'
import type { Test } from 'tap'

export function hasCommand (command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0
}

/**
 * True when every command is on PATH. Otherwise fails `t` under CI=true, or
 * skips it with the reason, and returns false.
 */
export function requireCommands (t: Test, what: string, commands: string[]): boolean {
  const missing = commands.filter((c) => !hasCommand(c))
  if (missing.length === 0) return true
  const reason = `could not run ${what}: ${missing.join(', ')} not on PATH`
  if (process.env.CI === 'true') t.fail(`${reason} (CI=true: .ci/install.d should have installed it)`)
  else t.pass(reason, { skip: reason })
  return false
}
