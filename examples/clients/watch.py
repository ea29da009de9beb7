#!/usr/bin/env python3
"""Prints one key of a secret served by the kube-secret-proxy sidecar, then again on
every change, with the Python standard library only: the Server-Sent Events stream
(/v1/events) carries each new value; a reconnect resumes with Last-Event-ID.

    usage: watch.py SECRET KEY    (KUBE_SECRET_PROXY_URL, default http://127.0.0.1:8642;
                                   KUBE_SECRET_PROXY_TOKEN_FILE when the sidecar wants a bearer token)

Output: KEY=value lines.
"""
import base64
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

URL = os.environ.get("KUBE_SECRET_PROXY_URL", "http://127.0.0.1:8642")


def headers(extra=None):
    # The header is required: it keeps URL-fetching bugs (SSRF) away from the secrets.
    h = {"Kube-Secret-Proxy": "true"}
    token_file = os.environ.get("KUBE_SECRET_PROXY_TOKEN_FILE")
    if token_file:
        with open(token_file) as f:
            h["Authorization"] = "Bearer " + f.read().strip()
    h.update(extra or {})
    return h


def show(key, value):
    print(f"{key}={value}", flush=True)


def read_key(secret, key):
    path = f"/v1/secrets/{urllib.parse.quote(secret)}/keys/{urllib.parse.quote(key)}"
    with urllib.request.urlopen(urllib.request.Request(URL + path, headers=headers())) as res:
        return res.read().decode()


def events(secret, last_event_id):
    """Yields (id, event, message) for each Server-Sent Event."""
    extra = {"Accept": "text/event-stream"}
    if last_event_id:
        extra["Last-Event-ID"] = last_event_id
    query = urllib.parse.urlencode({"secret": secret})
    req = urllib.request.Request(f"{URL}/v1/events?{query}", headers=headers(extra))
    with urllib.request.urlopen(req) as res:
        event_id, event, data = None, None, []
        for raw in res:
            line = raw.decode().rstrip("\r\n")
            if line == "":
                if data:
                    yield event_id, event, json.loads("\n".join(data))
                event, data = None, []
            elif line.startswith("id:"):
                event_id = line[3:].strip()
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
            # lines starting with ":" are keep-alive comments


def main():
    secret, key = sys.argv[1], sys.argv[2]
    current = read_key(secret, key)
    show(key, current)
    last_event_id, delay = None, 0.5
    while True:
        try:
            for event_id, event, message in events(secret, last_event_id):
                last_event_id, delay = event_id, 0.5
                if event in ("SNAPSHOT", "MODIFIED") and key in message.get("data", {}):
                    value = base64.b64decode(message["data"][key]).decode()
                    if value != current:
                        current = value
                        show(key, value)
                elif event in ("DELETED", "FORBIDDEN"):
                    print(f"{secret}: {event} {message.get('reason', '')}", file=sys.stderr, flush=True)
        except (urllib.error.URLError, ConnectionError) as err:
            print(f"stream ended ({err}); reconnecting in {delay} s", file=sys.stderr, flush=True)
        time.sleep(delay)
        delay = min(delay * 2, 10)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
