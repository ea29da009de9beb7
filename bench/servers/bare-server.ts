// The limit for a Node read: a node:http server answering fixed bytes with
// fixed headers (the sidecar's own answer, captured by the caller). argv[2]:
// JSON { headers, body (base64) }. Prints "listening <port>".
import { createServer } from 'node:http'

const spec = JSON.parse(process.argv[2] ?? '{}') as { headers: Record<string, string>, body: string }
const body = Buffer.from(spec.body, 'base64')
const headers = { ...spec.headers, 'content-length': String(body.length) }

const server = createServer((_req, res) => {
  res.writeHead(200, headers)
  res.end(body)
})
server.listen(0, '127.0.0.1', () => {
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no TCP address')
  process.stdout.write(`listening ${address.port}\n`)
})
process.on('SIGTERM', () => { server.close(); server.closeAllConnections() })
