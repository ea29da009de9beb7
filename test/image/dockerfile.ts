// Reads the Dockerfile into stages of instructions, so that the image test
// runs the very COPY and RUN lines an image build runs (no Docker engine here).
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

export interface Instruction {
  /** upper-case keyword: FROM, RUN, COPY, ... */
  keyword: string
  /** the rest of the line, continuations joined */
  args: string
  line: number
}

export interface Stage {
  /** the base image as written, ${ARG}s expanded */
  from: string
  name: string | undefined
  instructions: Instruction[]
}

export interface Dockerfile {
  /** ARGs before the first FROM, with their defaults */
  globalArgs: Record<string, string>
  stages: Stage[]
}

export const DOCKERFILE = join(import.meta.dirname, '..', '..', 'Dockerfile')

export function parseDockerfile (text: string = readFileSync(DOCKERFILE, 'utf8')): Dockerfile {
  const instructions: Instruction[] = []
  let pending: { text: string, line: number } | undefined
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim()
    if (pending === undefined && (line === '' || line.startsWith('#'))) return
    if (pending !== undefined && line.startsWith('#')) return // comments inside a continuation
    const continued = line.endsWith('\\')
    const part = continued ? line.slice(0, -1).trim() : line
    pending = pending === undefined ? { text: part, line: index + 1 } : { text: `${pending.text} ${part}`.trim(), line: pending.line }
    if (!continued) {
      const match = /^(\S+)\s*(.*)$/s.exec(pending.text)
      if (match !== null) instructions.push({ keyword: match[1]!.toUpperCase(), args: match[2]!, line: pending.line })
      pending = undefined
    }
  })

  const globalArgs: Record<string, string> = {}
  const stages: Stage[] = []
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const [image = '', as, name] = instruction.args.split(/\s+/)
      stages.push({ from: expand(image, globalArgs), name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] })
    } else if (stages.length === 0) {
      if (instruction.keyword !== 'ARG') throw new Error(`Dockerfile:${instruction.line}: ${instruction.keyword} before FROM`)
      const [key, value = ''] = instruction.args.split('=', 2)
      globalArgs[key!.trim()] = value.trim()
    } else {
      stages.at(-1)!.instructions.push(instruction)
    }
  }
  return { globalArgs, stages }
}

export function expand (value: string, args: Record<string, string>): string {
  return value.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, braced: string | undefined, bare: string | undefined) => args[braced ?? bare ?? ''] ?? whole)
}

/** COPY's sources, destination and --from/--chown flags. */
export function parseCopy (args: string): { from: string | undefined, sources: string[], dest: string } {
  const words = args.trim().split(/\s+/)
  const flags = words.filter((w) => w.startsWith('--'))
  const paths = words.filter((w) => !w.startsWith('--'))
  const dest = paths.pop()
  if (dest === undefined || paths.length === 0) throw new Error(`COPY needs sources and a destination: ${args}`)
  const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length)
  return { from, sources: paths, dest }
}

/** LABEL key="value" pairs. */
export function parseLabels (args: string, vars: Record<string, string>): Record<string, string> {
  const labels: Record<string, string> = {}
  for (const match of args.matchAll(/([\w.-]+)="([^"]*)"/g)) labels[match[1]!] = expand(match[2]!, vars)
  return labels
}
