package hexclient

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// TokenSource yields the Hex API token. It is asked before every request, so a
// rotated token is picked up without a restart.
type TokenSource interface {
	Token() (string, error)
}

// ErrNoToken means no token source had a value.
var ErrNoToken = errors.New("hexclient: no Hex API token (set $CREDENTIALS_DIRECTORY/hex-token, HEX_API_TOKEN or token_file)")

// FileTokenSource re-reads the token on every call, in this order: the systemd
// credential $CREDENTIALS_DIRECTORY/hex-token, the environment value HEX_API_TOKEN,
// the token file. Surrounding whitespace is trimmed.
type FileTokenSource struct {
	getenv func(string) string
	path   string
}

// NewFileTokenSource returns a FileTokenSource reading the environment through getenv
// (never os.Getenv directly) and, last, the file at tokenFile ("" for none).
func NewFileTokenSource(getenv func(string) string, tokenFile string) *FileTokenSource {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	return &FileTokenSource{getenv: getenv, path: tokenFile}
}

// Token implements TokenSource. Errors name the source (credential, environment
// variable or file), never the token: a token with a character that cannot go into an
// HTTP header (ValidToken) is refused here, before any request is built.
func (s *FileTokenSource) Token() (string, error) {
	if dir := s.getenv("CREDENTIALS_DIRECTORY"); dir != "" {
		p := filepath.Join(dir, "hex-token")
		b, err := os.ReadFile(p)
		switch {
		case err == nil:
			if t := strings.TrimSpace(string(b)); t != "" {
				if err := ValidToken(t); err != nil {
					return "", fmt.Errorf("read token credential %s: %w", p, err)
				}
				return t, nil
			}
		case !errors.Is(err, os.ErrNotExist):
			return "", fmt.Errorf("read token credential %s: %w", p, pathError(err))
		}
	}
	if t := strings.TrimSpace(s.getenv("HEX_API_TOKEN")); t != "" {
		if err := ValidToken(t); err != nil {
			return "", fmt.Errorf("read token from $HEX_API_TOKEN: %w", err)
		}
		return t, nil
	}
	if s.path != "" {
		b, err := os.ReadFile(s.path)
		if err != nil {
			return "", fmt.Errorf("read token file %s: %w", s.path, pathError(err))
		}
		if t := strings.TrimSpace(string(b)); t != "" {
			if err := ValidToken(t); err != nil {
				return "", fmt.Errorf("read token file %s: %w", s.path, err)
			}
			return t, nil
		}
		return "", fmt.Errorf("read token file %s: file is empty: %w", s.path, ErrNoToken)
	}
	return "", ErrNoToken
}

// ErrBadToken is matched (errors.Is) by the error of a token that cannot be sent.
var ErrBadToken = errors.New("hexclient: malformed Hex API token")

// badTokenError says what is wrong with a token, never what it is.
type badTokenError struct {
	what string
	at   int
}

func (e *badTokenError) Error() string {
	if e.what == "" {
		return "the token is empty: a Hex token starts hxtp_ or hxtw_ (look for an empty file or variable)"
	}
	return fmt.Sprintf("the token has %s at byte %d: a Hex token is visible ASCII without spaces "+
		"(look for a line break, a quote or a space pasted with it)", e.what, e.at)
}

func (e *badTokenError) Is(target error) bool { return target == ErrBadToken }

// ValidToken is nil when tok can go into an Authorization header as a bearer token:
// not empty, visible ASCII, no spaces or control characters. Its error never contains
// the token.
func ValidToken(tok string) error {
	if tok == "" {
		return &badTokenError{}
	}
	for i := 0; i < len(tok); i++ {
		switch c := tok[i]; {
		case c < 0x20 || c == 0x7f:
			return &badTokenError{what: fmt.Sprintf("a control character (%#02x)", c), at: i}
		case c == ' ':
			return &badTokenError{what: "a space", at: i}
		case c > 0x7e:
			return &badTokenError{what: "a non-ASCII byte", at: i}
		}
	}
	return nil
}

// pathError strips the path from an *os.PathError (the caller names the path once).
func pathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// StaticToken is a fixed token (tests, `hexcron sim` demos).
type StaticToken string

// Token returns the token.
func (s StaticToken) Token() (string, error) {
	if s == "" {
		return "", ErrNoToken
	}
	if err := ValidToken(string(s)); err != nil {
		return "", fmt.Errorf("static token: %w", err)
	}
	return string(s), nil
}
