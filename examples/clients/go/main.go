// Command kube-secret-proxy-client prints one key of a secret served by the
// kube-secret-proxy sidecar, then again on every change, with the Go standard
// library only: a long-poll (?wait= with If-None-Match) returns as soon as
// the secret's content differs from the ETag it was given.
//
//	usage: go run . SECRET KEY   (KUBE_SECRET_PROXY_URL, default http://127.0.0.1:8642;
//	                              KUBE_SECRET_PROXY_TOKEN_FILE when the sidecar wants a bearer token)
//
// Output: KEY=value lines.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: kube-secret-proxy-client SECRET KEY")
		os.Exit(2)
	}
	secret, key := os.Args[1], os.Args[2]
	base := os.Getenv("KUBE_SECRET_PROXY_URL")
	if base == "" {
		base = "http://127.0.0.1:8642"
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	keyURL := fmt.Sprintf("%s/v1/secrets/%s/keys/%s", base, url.PathEscape(secret), url.PathEscape(key))

	etag, delay := "", 500*time.Millisecond
	for ctx.Err() == nil {
		next, err := poll(ctx, keyURL, key, etag)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			fmt.Fprintf(os.Stderr, "%v; retrying in %s\n", err, delay)
			select {
			case <-time.After(delay):
			case <-ctx.Done():
			}
			delay = min(delay*2, 10*time.Second)
			continue
		}
		etag, delay = next, 500*time.Millisecond
	}
}

// poll reads the key: at once when etag is empty, else waiting (up to 55 s)
// for a different content version. It prints the value on 200 and returns the
// ETag to wait on next.
func poll(ctx context.Context, keyURL, key, etag string) (string, error) {
	target := keyURL
	if etag != "" {
		target += "?wait=55s"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return etag, err
	}
	// The header is required: it keeps URL-fetching bugs (SSRF) away from the secrets.
	req.Header.Set("Kube-Secret-Proxy", "true")
	if file := os.Getenv("KUBE_SECRET_PROXY_TOKEN_FILE"); file != "" {
		token, err := os.ReadFile(file)
		if err != nil {
			return etag, err
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return etag, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return etag, err
	}
	switch res.StatusCode {
	case http.StatusOK:
		fmt.Printf("%s=%s\n", key, body)
		return res.Header.Get("ETag"), nil
	case http.StatusNotModified:
		return etag, nil
	default:
		return etag, fmt.Errorf("GET %s: %s %s", keyURL, res.Status, strings.TrimSpace(string(body)))
	}
}
