// The logger: pino with redaction set up once, here, so no secret value,
// ServiceAccount token or bearer token reaches a log line whatever a caller
// passes in.
import { pino, type Logger, type DestinationStream } from 'pino'
import type { LogLevel } from './config.ts'

/** Paths censored in every log object (pino redact syntax). */
export const REDACT_PATHS = [
  'data', '*.data', 'stringData', '*.stringData',
  'token', '*.token', 'authToken', '*.authToken',
  'headers.authorization', '*.headers.authorization',
  'req.headers.authorization', 'req.headers.cookie'
]

export function createLogger (level: LogLevel, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { name: 'kube-secret-proxy' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' }
  }
  return destination === undefined ? pino(options) : pino(options, destination)
}
