package hexclient

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sort"
	"sync"
)

// Redacted replaces a secret, or any piece of one, in text from outside.
const Redacted = "[redacted]"

// maxSecrets bounds the secrets a Redactor keeps: the oldest added is forgotten first
// (a token rotated many times over a long run).
const maxSecrets = 32

// Redactor removes known secrets from text: the Hex token (every value the token
// source gave), and whatever else is added (gateway client tokens, a database
// password). It finds each secret however it is echoed: whole or any piece of at least
// six characters (a truncated echo), in any letter case, hex-encoded (a piece of at
// least twelve hex digits), base64-encoded and URL-escaped. It is safe for concurrent
// use.
//
// The Client redacts every answer from Hex once, as it arrives (body, headers,
// transport errors), so that nothing decoded from it (run URL, trace id, error text)
// can carry a secret into a log line, the database, stdout or a metric.
type Redactor struct {
	mu      sync.RWMutex
	secrets []string // in the order added
	forms   []redactForm
}

// redactForm is one encoding of one secret: any k consecutive bytes of text that
// equal (ignoring ASCII case) k consecutive bytes of it are redacted.
type redactForm struct {
	k     int
	grams map[string]struct{} // every k-byte piece of the lower-cased form
}

// NewRedactor returns a Redactor knowing secrets.
func NewRedactor(secrets ...string) *Redactor {
	r := &Redactor{}
	for _, s := range secrets {
		r.Add(s)
	}
	return r
}

// Add makes r redact secret (an empty secret is ignored; adding one twice is a no-op).
func (r *Redactor) Add(secret string) {
	if secret == "" {
		return
	}
	r.mu.RLock()
	known := false
	for _, s := range r.secrets {
		known = known || s == secret
	}
	r.mu.RUnlock()
	if known {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.secrets {
		if s == secret {
			return
		}
	}
	r.secrets = append(r.secrets, secret)
	if len(r.secrets) > maxSecrets {
		r.secrets = r.secrets[1:]
	}
	r.forms = r.forms[:0]
	for _, s := range r.secrets {
		r.forms = append(r.forms, formsOf(s)...)
	}
}

// formsOf lists the encodings of s that are searched for.
func formsOf(s string) []redactForm {
	encodings := []struct {
		text string
		k    int
	}{
		{s, 6},
		{hex.EncodeToString([]byte(s)), 12},
		{base64.StdEncoding.EncodeToString([]byte(s)), 8},
		{base64.URLEncoding.EncodeToString([]byte(s)), 8},
		{url.QueryEscape(s), 6},
		{url.PathEscape(s), 6},
	}
	var out []redactForm
	seen := map[string]bool{}
	for _, e := range encodings {
		text := asciiLower(e.text)
		if seen[text] {
			continue
		}
		seen[text] = true
		k := min(e.k, len(text))
		f := redactForm{k: k, grams: map[string]struct{}{}}
		for i := 0; i+k <= len(text); i++ {
			f.grams[text[i:i+k]] = struct{}{}
		}
		out = append(out, f)
	}
	return out
}

// asciiLower lower-cases ASCII letters only, so that byte offsets are kept.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// String returns s with every piece of a known secret replaced by Redacted.
func (r *Redactor) String(s string) string {
	if r == nil || s == "" {
		return s
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.forms) == 0 {
		return s
	}
	low := asciiLower(s)
	type span struct{ lo, hi int }
	var spans []span
	for _, f := range r.forms {
		for i := 0; i+f.k <= len(low); i++ {
			if _, ok := f.grams[low[i:i+f.k]]; ok {
				spans = append(spans, span{i, i + f.k})
			}
		}
	}
	if len(spans) == 0 {
		return s
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].lo < spans[j].lo })
	var b bytes.Buffer
	last := 0
	for i := 0; i < len(spans); {
		lo, hi := spans[i].lo, spans[i].hi
		for i++; i < len(spans) && spans[i].lo <= hi; i++ {
			hi = max(hi, spans[i].hi)
		}
		b.WriteString(s[last:lo])
		b.WriteString(Redacted)
		last = hi
	}
	b.WriteString(s[last:])
	return b.String()
}

// Body returns body with the secrets redacted. A JSON body is redacted value by value
// after decoding, so that an escaped echo (\u0068xtp_...) is found too, and is
// re-encoded only when something was redacted; any other body is redacted as text.
func (r *Redactor) Body(body []byte) []byte {
	if r == nil || len(body) == 0 {
		return body
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err == nil {
		if _, err := dec.Token(); errors.Is(err, io.EOF) {
			nv, changed := r.value(v)
			if !changed {
				return body
			}
			var out bytes.Buffer
			enc := json.NewEncoder(&out)
			enc.SetEscapeHTML(false)
			if enc.Encode(nv) == nil {
				return bytes.TrimRight(out.Bytes(), "\n")
			}
		}
	}
	return []byte(r.String(string(body)))
}

// value redacts every string (and object key) of a decoded JSON value.
func (r *Redactor) value(v any) (any, bool) {
	switch x := v.(type) {
	case string:
		red := r.String(x)
		return red, red != x
	case []any:
		changed := false
		for i, e := range x {
			var c bool
			x[i], c = r.value(e)
			changed = changed || c
		}
		return x, changed
	case map[string]any:
		changed := false
		out := make(map[string]any, len(x))
		for k, e := range x {
			nv, c := r.value(e)
			nk := r.String(k)
			changed = changed || c || nk != k
			out[nk] = nv
		}
		return out, changed
	}
	return v, false
}

// Header redacts every value of h in place.
func (r *Redactor) Header(h http.Header) {
	if r == nil {
		return
	}
	for k, vs := range h {
		for i, v := range vs {
			vs[i] = r.String(v)
		}
		h[k] = vs
	}
}

// Error returns err with its message redacted (nil for nil). errors.Is and errors.As
// still see the original through Unwrap.
func (r *Redactor) Error(err error) error {
	if err == nil || r == nil {
		return err
	}
	msg := err.Error()
	if red := r.String(msg); red != msg {
		return &redactedError{msg: red, err: err}
	}
	return err
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
