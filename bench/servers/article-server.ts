// The article's pattern behind HTTP so autocannon can drive it: every request
// reads the secret from the API server with client-node, then answers the
// key's bytes. argv[2]: JSON ArticleTarget plus { key }. Prints "listening <port>".
import { createServer } from 'node:http'
import { articleApi, articleRead, type ArticleTarget } from '../article-client.ts'

const target = JSON.parse(process.argv[2] ?? '{}') as ArticleTarget & { key: string }
const api = articleApi(target)

const server = createServer((_req, res) => {
  articleRead(api, target, target.key).then((value) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(value.length), 'cache-control': 'no-store' })
    res.end(value)
  }, (err: unknown) => {
    res.writeHead(502, { 'content-type': 'text/plain' })
    res.end(String(err))
  })
})
server.listen(0, '127.0.0.1', () => {
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no TCP address')
  process.stdout.write(`listening ${address.port}\n`)
})
process.on('SIGTERM', () => { server.close(); server.closeAllConnections() })
