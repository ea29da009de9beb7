// Runs a command (the test runner) with one shared control plane: builds and
// starts it first, hands its state file to the command through
// KSP_TEST_CLUSTER, and tears it down when the command ends or this process
// is interrupted. Usage: node test/cluster/with-cluster.ts <command> [args...]
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ControlPlane } from './control-plane.ts'
import { SHARED_CLUSTER_ENV } from './cluster.ts'

const [command, ...args] = process.argv.slice(2)
if (command === undefined) {
  console.error('usage: node test/cluster/with-cluster.ts <command> [args...]')
  process.exit(2)
}

const started = Date.now()
const plane = await ControlPlane.start({ log: (line) => console.error(`[cluster] ${line}`) })
console.error(`[cluster] kube-apiserver ${plane.state.server} ready in ${((Date.now() - started) / 1000).toFixed(1)} s`)
const stateFile = join(plane.state.dir, 'state.json')
writeFileSync(stateFile, JSON.stringify(plane.state))

const child = spawn(command, args, {
  stdio: 'inherit',
  env: { ...process.env, [SHARED_CLUSTER_ENV]: stateFile }
})
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => child.kill(signal))
}
const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
  child.on('exit', (c, s) => resolve([c, s]))
})
await plane.stop()
process.exitCode = code ?? (signal === null ? 1 : 128)
