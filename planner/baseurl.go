package planner

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// apiRoot is the path of Hex's API under a workspace's host.
const apiRoot = "/api/v1"

// NormalizeBaseURL returns the Hex API root for base_url as people write it: the host
// alone (https://app.hex.tech, https://eu.hex.tech, https://NAME.hex.tech, with or
// without a trailing slash, as Airflow's and dagster's Hex connections take it) or the
// host with /api/v1. The result is SCHEME://HOST/api/v1, the host lower-cased. It must
// be https, except to a loopback host (127.0.0.0/8, ::1, localhost: `hexcron sim`).
// Any other path, a query, a fragment or credentials are an error saying what is
// expected.
func NormalizeBaseURL(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	const want = "write the host alone (https://app.hex.tech, https://eu.hex.tech, https://NAME.hex.tech) or the host with /api/v1"
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("%s is not an http(s) URL: %s", quote(s), want)
	}
	if u.User != nil {
		return "", fmt.Errorf("must not carry credentials: %s", want)
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#") {
		return "", fmt.Errorf("%s has a query or a fragment: %s", quote(u.Redacted()), want)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return "", fmt.Errorf("must use https (plain http is allowed only for localhost): the token would travel in clear")
	}
	p := strings.TrimRight(u.EscapedPath(), "/")
	if p != "" && p != apiRoot {
		return "", fmt.Errorf("path %s is not Hex's API root: %s", quote(u.EscapedPath()), want)
	}
	return u.Scheme + "://" + strings.ToLower(u.Host) + apiRoot, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
