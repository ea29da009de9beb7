// The hooks through which the HTTP layer reports what it does; metrics.ts
// implements them with prom-client. Labels never carry a secret value.

export type StreamKind = 'websocket' | 'sse'

export interface HttpMetrics {
  /** one answered request; `route` is the route pattern (e.g. /v1/secrets/:name), never the URL */
  request(route: string, code: number, seconds: number): void
  /** a streaming client connected (+1) or went away (-1) */
  clients(kind: StreamKind, delta: number): void
  /** one message written to one streaming client; `type` is SNAPSHOT, MODIFIED, … */
  messageSent(kind: StreamKind, type: string): void
  /** a streaming client closed because its send buffer overflowed */
  slowClientClosed(kind: StreamKind): void
  /** a store change received → the last subscriber written */
  propagation(seconds: number): void
}

export const noMetrics: HttpMetrics = {
  request () {},
  clients () {},
  messageSent () {},
  slowClientClosed () {},
  propagation () {}
}
