// Binds a Fastify app to its listener: host:port, or a unix socket that only
// the pod's user (and --listen-group) can reach.
import { chmod, chown, lstat, readFile, stat, unlink } from 'node:fs/promises'
import { connect } from 'node:net'
import { dirname } from 'node:path'
import type { FastifyInstance } from 'fastify'
import type { Listen } from './config.ts'

/** Why a listener could not be bound, phrased as a problem with its fix. */
export class ListenError extends Error {}

async function socketInUse (path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path)
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

async function groupId (group: string): Promise<number> {
  if (/^\d+$/.test(group)) return Number(group)
  const line = (await readFile('/etc/group', 'utf8')).split('\n').find((l) => l.split(':')[0] === group)
  const gid = line?.split(':')[2]
  if (gid === undefined) throw new ListenError(`--listen-group ${group} is not a group on this system: give a group name from /etc/group or a numeric gid`)
  return Number(gid)
}

async function prepareUnixSocket (path: string): Promise<void> {
  const dir = dirname(path)
  const dirStat = await stat(dir).catch(() => undefined)
  if (dirStat?.isDirectory() !== true) throw new ListenError(`--listen unix:${path}: directory ${dir} does not exist: create it (e.g. an emptyDir volume shared with the app)`)
  if ((dirStat.mode & 0o002) !== 0) throw new ListenError(`--listen unix:${path}: directory ${dir} is world-writable, so anyone could replace the socket: use a directory only the pod's user can write`)
  const existing = await lstat(path).catch(() => undefined)
  if (existing === undefined) return
  if (existing.isSymbolicLink()) throw new ListenError(`--listen unix:${path} is a symlink: refusing to follow it; remove it or choose another path`)
  if (!existing.isSocket()) throw new ListenError(`--listen unix:${path} exists and is not a socket: remove it or choose another path`)
  if (await socketInUse(path)) throw new ListenError(`--listen unix:${path} is in use by another process: stop it or choose another path`)
  await unlink(path) // stale, left by a previous run
}

/** Listens, or throws ListenError naming the problem and its fix. */
export async function listenOn (app: FastifyInstance, listen: Listen, flag: string, group?: string): Promise<void> {
  try {
    if (listen.kind === 'tcp') {
      await app.listen({ host: listen.host, port: listen.port })
      return
    }
    await prepareUnixSocket(listen.path)
    const gid = group === undefined ? undefined : await groupId(group)
    await app.listen({ path: listen.path })
    await chmod(listen.path, 0o660)
    if (gid !== undefined) await chown(listen.path, -1, gid)
  } catch (err) {
    if (err instanceof ListenError) throw err
    const code = (err as NodeJS.ErrnoException).code
    const where = listen.kind === 'tcp' ? `${listen.host}:${listen.port}` : `unix:${listen.path}`
    if (code === 'EADDRINUSE') throw new ListenError(`--${flag} ${where}: the address is already in use: stop what listens there or choose another port`)
    if (code === 'EADDRNOTAVAIL') throw new ListenError(`--${flag} ${where}: no such address on this host: use 127.0.0.1 or the pod IP`)
    if (code === 'EACCES') throw new ListenError(`--${flag} ${where}: permission denied: use a port above 1023 or a writable socket directory`)
    throw new ListenError(`--${flag} ${where}: ${(err as Error).message}`)
  }
}
