// Starts a helper server (bench/servers/*.ts) in its own process, as an app
// would run, and stops it.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

export interface ChildServer {
  child: ChildProcess
  port: number
  stop: () => Promise<void>
}

const running = new Set<ChildProcess>()
process.once('exit', () => { for (const child of running) child.kill('SIGKILL') })

export async function startServer (script: string, arg: unknown, nodeArgs: string[] = []): Promise<ChildServer> {
  const child = spawn(process.execPath, [...nodeArgs, join(import.meta.dirname, 'servers', script), JSON.stringify(arg)], { stdio: ['ignore', 'pipe', 'inherit'] })
  running.add(child)
  const lines = createInterface({ input: child.stdout! })
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not listen within 20 s`)), 20_000)
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${script} exited (${code})`)) })
    lines.on('line', (line) => {
      const match = /^listening (\d+)$/.exec(line)
      if (match !== null) { clearTimeout(timer); resolve(Number(match[1])) }
    })
  })
  return {
    child,
    port,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
      running.delete(child)
    }
  }
}
