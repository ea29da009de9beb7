#!/bin/sh
# Prints one key of a secret served by the kube-secret-proxy sidecar, then again
# on every change, with nothing but curl: a GET for the value, and the
# Server-Sent Events stream (/v1/events) to hear about changes.
#   usage: watch.sh SECRET KEY        (KUBE_SECRET_PROXY_URL, default http://127.0.0.1:8642;
#                                      KUBE_SECRET_PROXY_TOKEN_FILE when the sidecar wants a bearer token)
# Output: KEY=value lines. Long-poll instead of SSE:
#   curl -H 'Kube-Secret-Proxy: true' -H "If-None-Match: $etag" "$url/v1/secrets/$secret/keys/$key?wait=60s"
set -eu
secret="$1"
key="$2"
url="${KUBE_SECRET_PROXY_URL:-http://127.0.0.1:8642}"

proxy_curl() {
  # The header is required: it keeps URL-fetching bugs (SSRF) away from the secrets.
  if [ -n "${KUBE_SECRET_PROXY_TOKEN_FILE:-}" ]; then
    curl -fsS -H 'Kube-Secret-Proxy: true' -H "Authorization: Bearer $(cat "$KUBE_SECRET_PROXY_TOKEN_FILE")" "$@"
  else
    curl -fsS -H 'Kube-Secret-Proxy: true' "$@"
  fi
}

show() {
  value="$(proxy_curl "$url/v1/secrets/$secret/keys/$key")" || { echo "could not read $secret/$key" >&2; return 0; }
  printf '%s=%s\n' "$key" "$value"
}

show
while :; do
  # A (re)connection starts with a SNAPSHOT: print what is current, then every MODIFIED.
  proxy_curl -N "$url/v1/events?secret=$secret" | while IFS= read -r line; do
    case "$line" in
      'event: SNAPSHOT' | 'event: MODIFIED') show ;;
      'event: DELETED' | 'event: FORBIDDEN') echo "$secret: ${line#event: }" >&2 ;;
    esac
  done || true
  echo "stream ended; reconnecting" >&2
  sleep 1
done
