// What /proc says about a process: resident memory, CPU time, and its TCP
// connections to a given port (matched through its socket file descriptors).
import { readFileSync, readdirSync, readlinkSync } from 'node:fs'

const TICKS_PER_SECOND = 100 // USER_HZ on Linux

/** VmRSS of a process in bytes */
export function rssBytes (pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status)
  if (match === null) throw new Error(`no VmRSS in /proc/${pid}/status`)
  return Number(match[1]) * 1024
}

/** user + system CPU time of a process (not its children) in seconds */
export function cpuSeconds (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // The command name may hold spaces and parentheses: fields start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // fields[0] is field 3 (state): utime is field 14, stime field 15
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND
}

/** established TCP connections from `pid` to 127.0.0.1:`port` */
export function tcpConnectionsTo (pid: number, port: number): number {
  const inodes = new Set<string>()
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`)
      const match = /^socket:\[(\d+)\]$/.exec(target)
      if (match !== null) inodes.add(match[1]!)
    } catch { /* closed meanwhile */ }
  }
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0')
  let count = 0
  for (const table of ['tcp', 'tcp6']) {
    let text: string
    try { text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8') } catch { continue }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/)
      // local_address rem_address st ... inode (col 9); st 01 = ESTABLISHED
      if (cols.length < 10 || cols[3] !== '01') continue
      if (!cols[2]!.endsWith(`:${hexPort}`)) continue
      if (inodes.has(cols[9]!)) count += 1
    }
  }
  return count
}

/** Samples VmRSS every `intervalMs` until stopped; returns the samples in bytes. */
export function sampleRss (pid: number, intervalMs = 100): { stop: () => number[] } {
  const samples: number[] = []
  const take = (): void => { try { samples.push(rssBytes(pid)) } catch { /* exited */ } }
  take()
  const timer = setInterval(take, intervalMs)
  return {
    stop: () => {
      clearInterval(timer)
      take()
      return samples
    }
  }
}
