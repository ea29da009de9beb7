// Configuration: flags, env vars, defaults and every problem reported at once.
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseConfig, parseDuration, parseBytes, ConfigError, helpText, SETTINGS, envName } from '../proxy/config.ts'

const saDir = mkdtempSync(join(tmpdir(), 'ksp-config-'))
writeFileSync(join(saDir, 'token'), 'a-token')
writeFileSync(join(saDir, 'ca.crt'), 'a-ca')
writeFileSync(join(saDir, 'namespace'), 'apps')
t.teardown(() => rmSync(saDir, { recursive: true, force: true }))
const podEnv = { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' }
const base = [`--service-account-dir=${saDir}`]

t.test('in a pod: secrets default to the pod\'s namespace, settings to their defaults', async (t) => {
  const config = parseConfig([...base, '--secret', 'db', '--secret', 'other/api?optional'], podEnv)
  t.same(config.secrets, [
    { namespace: 'apps', name: 'db', optional: false },
    { namespace: 'other', name: 'api', optional: true }
  ])
  t.equal(config.namespace, 'apps')
  t.same(config.listen, { kind: 'tcp', host: '127.0.0.1', port: 8642 })
  t.same(config.metricsListen, { kind: 'tcp', host: '127.0.0.1', port: 9642 })
  t.equal(config.mode, 'auto')
  t.equal(config.recheckIntervalMs, 60_000)
  t.equal(config.keepPreviousMs, 0)
  t.same(config.credentials, { kind: 'in-cluster', serviceAccountDir: saDir, host: '10.0.0.1', port: '443' })
  t.ok(Object.isFrozen(config))
})

t.test('env vars set what flags do; a flag wins; lists are comma-separated', async (t) => {
  const config = parseConfig([...base, '--mode=poll'], { ...podEnv, KSP_SECRET: 'a, b ,c', KSP_MODE: 'watch', KSP_POLL_INTERVAL: '250ms', KSP_LISTEN: 'unix:/run/ksp/sock' })
  t.same(config.secrets.map((s) => s.name), ['a', 'b', 'c'])
  t.equal(config.mode, 'poll')
  t.equal(config.pollIntervalMs, 250)
  t.same(config.listen, { kind: 'unix', path: '/run/ksp/sock' })
})

t.test('every problem is reported together, each with its fix', async (t) => {
  const err = t.throws(() => parseConfig(['--service-account-dir=/nonexistent', '--bogus', '--secret', 'Bad_Name', '--mode', 'push', '--poll-interval', 'soon', '--listen', 'nowhere'], {}))
  t.ok(err instanceof ConfigError)
  const problems = (err as ConfigError).problems.join('\n')
  for (const expected of [
    /unknown flag --bogus/,
    /KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set/,
    /cannot read \/nonexistent\/token \(ENOENT\)/,
    /cannot read \/nonexistent\/ca.crt \(ENOENT\)/,
    /--secret "Bad_Name" is not \[namespace\/\]name/,
    /--mode=push must be auto, watch or poll/,
    /--poll-interval=soon is not a duration/,
    /--listen=nowhere is not host:port/
  ]) t.match(problems, expected)
  t.equal((err as ConfigError).problems.length, 8)
})

t.test('an env var with a bad value is named as the env var', async (t) => {
  const err = t.throws(() => parseConfig([...base, '--secret=db'], { ...podEnv, KSP_MODE: 'sometimes' })) as ConfigError
  t.match(err.problems.join('\n'), /KSP_MODE=sometimes must be auto, watch or poll/)
})

t.test('no secret is a problem; --help and --version need none', async (t) => {
  const err = t.throws(() => parseConfig(base, podEnv)) as ConfigError
  t.match(err.problems, [/no secret to serve/])
  t.equal(parseConfig(['--help'], {}).command, 'help')
  t.equal(parseConfig(['--version'], {}).command, 'version')
  t.equal(parseConfig([...base, 'check', '--secret=db'], podEnv).command, 'check')
})

t.test('--help lists each setting with its env name and default', async (t) => {
  const help = helpText('1.2.3')
  for (const s of SETTINGS) {
    t.match(help, `--${s.flag}`)
    t.match(help, `env ${envName(s.flag)}, default`)
  }
  t.equal(envName('secret'), 'KSP_SECRET')
  t.equal(envName('metrics-listen'), 'KSP_METRICS_LISTEN')
})

t.test('durations and sizes', async (t) => {
  const durations: Array<[string, number | undefined]> = [['500ms', 500], ['30s', 30_000], ['5m', 300_000], ['1h', 3_600_000], ['15', 15_000], ['1.5s', 1500], ['-1s', undefined], ['soon', undefined], ['', undefined]]
  for (const [input, ms] of durations) t.equal(parseDuration(input), ms, input)
  const sizes: Array<[string, number | undefined]> = [['1024', 1024], ['64KiB', 65_536], ['1MiB', 1_048_576], ['1MB', undefined]]
  for (const [input, bytes] of sizes) t.equal(parseBytes(input), bytes, input)
})

t.test('--auth-token-file is read once and never echoed', async (t) => {
  const file = join(saDir, 'auth')
  writeFileSync(file, 'sekrit-bearer\n')
  const config = parseConfig([...base, '--secret=db', `--auth-token-file=${file}`], podEnv)
  t.equal(config.authToken?.toString(), 'sekrit-bearer')
  const err = t.throws(() => parseConfig([...base, '--secret=db', '--auth-token-file=/nope'], podEnv)) as ConfigError
  t.match(err.message, /cannot read --auth-token-file \/nope/)
})

t.test('--allow takes namespace/pattern and may stand without --secret', async (t) => {
  t.same(parseConfig([...base, '--allow=apps/db-*'], podEnv).allow, ['apps/db-*'])
  const err = t.throws(() => parseConfig([...base, '--allow=db-*'], podEnv)) as ConfigError
  t.match(err.problems, [/--allow "db-\*" is not namespace\/pattern/])
})
