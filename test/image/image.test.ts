// The container image without a container engine: runs the Dockerfile's own
// build-stage COPY and RUN lines in a scratch copy of the repository (the
// build context: tracked and untracked files, minus .dockerignore), copies
// what the runtime stage copies, and starts its ENTRYPOINT as a non-root user
// that cannot write the image's files — with --version, then as a sidecar
// that must become ready and serve a secret.
import t, { type Test } from 'tap'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, matchesGlob } from 'node:path'
import { once } from 'node:events'
import { Cluster } from '../cluster/cluster.ts'
import { freePort } from '../cluster/control-plane.ts'
import { waitFor } from '../cluster/helpers.ts'
import { httpGet, PROXY_HEADER, decode } from '../sidecar/sidecar.ts'
import { parseDockerfile, parseCopy, parseLabels, expand, type Stage } from './dockerfile.ts'

const ROOT = join(import.meta.dirname, '..', '..')
// npm ci alone takes ~25 s here, and longer on a busy CI machine.
t.setTimeout(360_000)
const NOBODY = 65534
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }
const dockerfile = parseDockerfile()
const [build, runtime] = dockerfile.stages as [Stage, Stage]

const only = (stage: Stage, keyword: string): string[] => stage.instructions.filter((i) => i.keyword === keyword).map((i) => i.args)

t.test('the Dockerfile: two stages on Node 24, non-root, OCI labels, the sidecar as entrypoint', async (t) => {
  t.equal(dockerfile.stages.length, 2)
  t.match(build.from, /^node:24[.-]/, 'builds on Node 24')
  t.equal(runtime.from, build.from, 'runs on the same base')
  t.equal(build.name, 'build')
  t.strictSame(only(build, 'RUN').map((r) => r.split(/\s+/).slice(0, 2).join(' ')), ['npm ci', 'npm run', 'npm prune'])
  t.match(only(build, 'RUN').at(-1), /--omit=dev/)
  t.strictSame(only(runtime, 'RUN'), [], 'the runtime stage runs nothing: what it holds is what the test ran')
  const user = only(runtime, 'USER')
  t.equal(user.length, 1)
  t.match(user[0], /^[1-9]\d*:[1-9]\d*$/, 'a numeric non-root uid:gid, so runAsNonRoot can be checked')
  t.strictSame(JSON.parse(only(runtime, 'ENTRYPOINT')[0] ?? ''), ['node', 'dist/proxy/main.js'])
  const args = Object.fromEntries(only(runtime, 'ARG').map((a) => a.split('=', 2) as [string, string]))
  t.equal(args.VERSION, pkg.version, 'the VERSION label default follows package.json')
  const labels = parseLabels(only(runtime, 'LABEL').join(' '), { ...dockerfile.globalArgs, ...args })
  for (const key of ['title', 'description', 'version', 'revision', 'created', 'licenses', 'base.name']) {
    t.ok(labels[`org.opencontainers.image.${key}`], `label org.opencontainers.image.${key}`)
  }
  t.equal(labels['org.opencontainers.image.version'], pkg.version)
})

// ---- the build, as the Dockerfile says it
const scratch = mkdtempSync(join(tmpdir(), 'ksp-image-'))
chmodSync(scratch, 0o755)
t.teardown(() => rmSync(scratch, { recursive: true, force: true }))
const context = join(scratch, 'context')
const buildRoot = join(scratch, 'build')
const imageRoot = join(scratch, 'image')

const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
const isIgnored = (path: string): boolean => ignored.some((p) => path === p || path.startsWith(`${p}/`) || matchesGlob(path, p))
const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' })
  .split('\0').filter((f) => f !== '' && existsSync(join(ROOT, f)) && !isIgnored(f))
for (const file of files) cpSync(join(ROOT, file), join(context, file))

// The base image has Node 24 and npm on PATH; so has this: the test's Node and
// the machine's npm, with the machine's npm and CA settings but not the test
// runner's loaders.
const inherited = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(NODE_OPTIONS|TAP|_TAP|KSP_)/.test(key)))
const baseEnv: Record<string, string | undefined> = {
  ...inherited,
  PATH: [dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(':'),
  // Reuse the local npm cache instead of the network; an image build has an empty cache and fetches.
  npm_config_prefer_offline: 'true'
}

/** Runs a stage's WORKDIR, COPY and RUN lines in `root`; returns the final WORKDIR. */
function runStage (stage: Stage, root: string, copyFrom: (stageName: string) => string, t: Test): { workdir: string, env: Record<string, string> } {
  let workdir = root
  const vars: Record<string, string> = { ...dockerfile.globalArgs }
  const env: Record<string, string> = {}
  mkdirSync(root, { recursive: true })
  for (const { keyword, args, line } of stage.instructions) {
    if (keyword === 'ARG') {
      const [key, value = ''] = args.split('=', 2)
      vars[key!] = value
    } else if (keyword === 'ENV') {
      const [key, value = ''] = args.split('=', 2)
      env[key!] = expand(value, vars)
    } else if (keyword === 'WORKDIR') {
      workdir = join(root, args)
      mkdirSync(workdir, { recursive: true })
    } else if (keyword === 'COPY') {
      const copy = parseCopy(args)
      const base = copy.from === undefined ? context : copyFrom(copy.from)
      const intoDir = copy.dest.endsWith('/') || copy.sources.length > 1
      for (const source of copy.sources) {
                const to = intoDir ? join(workdir, copy.dest, source.split('/').at(-1)!) : join(workdir, copy.dest)
        cpSync(join(base, source), to, { recursive: true, verbatimSymlinks: true })
      }
    } else if (keyword === 'RUN') {
      const started = Date.now()
      const result = spawnSync('sh', ['-c', args], { cwd: workdir, env: { ...baseEnv, ...env }, encoding: 'utf8', timeout: 300_000 })
      if (result.status !== 0) throw new Error(`Dockerfile:${line}: RUN ${args} failed (${result.status ?? result.signal}):\n${result.stdout}\n${result.stderr}`)
      t.comment(`RUN ${args}: ${((Date.now() - started) / 1000).toFixed(1)} s`)
    }
  }
  return { workdir, env }
}

let image = { workdir: '', env: {} as Record<string, string> }
t.test('the build stage, then the runtime stage, as the Dockerfile writes them', async (t) => {
  const built = runStage(build, buildRoot, () => { throw new Error('the build stage copies from no stage') }, t)
  t.equal(built.workdir, join(buildRoot, 'app'))
  image = runStage(runtime, imageRoot, (name) => {
    if (name !== build.name) throw new Error(`COPY --from=${name}: no such stage`)
    return buildRoot
  }, t)
  t.equal(image.workdir, join(imageRoot, 'app'))
})
// The image's files belong to root, as COPY leaves them; the sidecar runs as another user.
const entrypoint = JSON.parse(only(runtime, 'ENTRYPOINT')[0] ?? '[]') as string[]
const runAs = { uid: NOBODY, gid: NOBODY }
const runEnv = (): Record<string, string> => ({ PATH: baseEnv.PATH!, ...image.env })
/**
 * The ENTRYPOINT (or another command) as the container runs it: this env and
 * nothing else. `env -i` also keeps out the NODE_OPTIONS that the test
 * runner adds to every child it spawns.
 */
const inImage = (command: string[], env: Record<string, string> = {}): [string, string[]] =>
  ['env', ['-i', ...Object.entries({ ...runEnv(), ...env }).map(([k, v]) => `${k}=${v}`), ...command]]

t.test('the pruned image holds the build and production dependencies only', async (t) => {
  if (image.workdir === '') { t.fail('the build did not finish'); return }
  const app = image.workdir
  t.ok(existsSync(join(app, 'dist/proxy/main.js')))
  t.ok(existsSync(join(app, 'node_modules/fastify/package.json')), 'a production dependency')
  for (const dev of ['typescript', 'tap', 'node']) {
    t.notOk(existsSync(join(app, 'node_modules', dev)), `no dev dependency ${dev}`)
  }
  t.notOk(existsSync(join(app, 'proxy')), 'no TypeScript sources')
  const write = spawnSync(...inImage([entrypoint[0]!, '-e', 'require("node:fs").writeFileSync("probe", "")']), { cwd: app, ...runAs, encoding: 'utf8' })
  t.not(write.status, 0, 'the runtime user cannot write the image files')
  t.match(write.stderr, /EACCES/)
})

t.test('ENTRYPOINT --version', async (t) => {
  if (image.workdir === '') { t.fail('the build did not finish'); return }
  const result = spawnSync(...inImage([...entrypoint, '--version']), { cwd: image.workdir, ...runAs, encoding: 'utf8' })
  t.equal(result.status, 0, result.stderr)
  t.equal(result.stdout.trim(), pkg.version)
})

t.test('ENTRYPOINT as a sidecar: becomes ready, serves the secret, stops on SIGTERM', async (t) => {
  if (image.workdir === '') { t.fail('the build did not finish'); return }
  const cluster = Cluster.shared()
  t.teardown(() => cluster.close())
  const { namespace } = await cluster.appServiceAccount('image', ['db'], ['get', 'list', 'watch'])
  await cluster.createSecret(namespace, 'db', { password: 'from-the-image' })
  // A ServiceAccount directory the runtime user may read, as the kubelet lays it out.
  const sa = join(scratch, 'serviceaccount')
  mkdirSync(sa, { mode: 0o755 })
  writeFileSync(join(sa, 'token'), await cluster.mintToken(namespace, 'app'))
  writeFileSync(join(sa, 'ca.crt'), cluster.ca)
  writeFileSync(join(sa, 'namespace'), namespace)
  for (const name of ['token', 'ca.crt', 'namespace']) chownSync(join(sa, name), NOBODY, NOBODY)

  const [port, metricsPort] = [await freePort(), await freePort()]
  const child = spawn(...inImage([...entrypoint,
    `--service-account-dir=${sa}`, `--listen=127.0.0.1:${port}`, `--metrics-listen=127.0.0.1:${metricsPort}`, '--secret=db'
  ], { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(cluster.state.apiserverPort) }), {
    cwd: image.workdir,
    ...runAs,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = once(child, 'exit')
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })

  await waitFor('the image\'s sidecar to become ready', async () => {
    if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${output}`)
    return (await httpGet(metricsPort, '/readyz', {})).status === 200 ? true : undefined
  })
  const read = await httpGet(port, '/v1/secrets/db', PROXY_HEADER)
  t.equal(read.status, 200)
  t.equal(decode(read.json().data.password), 'from-the-image')
  const metrics = await httpGet(metricsPort, '/metrics', {})
  t.match(metrics.body.toString(), new RegExp(`kube_secret_proxy_build_info\\{version="${pkg.version.replaceAll('.', '\\.')}"`))
  child.kill('SIGTERM')
  const [code] = await exited
  t.equal(code, 0, `a graceful stop: ${output}`)
})
