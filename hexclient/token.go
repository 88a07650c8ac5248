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

// Token implements TokenSource. Errors name the file, never its content.
func (s *FileTokenSource) Token() (string, error) {
	if dir := s.getenv("CREDENTIALS_DIRECTORY"); dir != "" {
		p := filepath.Join(dir, "hex-token")
		b, err := os.ReadFile(p)
		switch {
		case err == nil:
			if t := strings.TrimSpace(string(b)); t != "" {
				return t, nil
			}
		case !errors.Is(err, os.ErrNotExist):
			return "", fmt.Errorf("read token credential %s: %w", p, pathError(err))
		}
	}
	if t := strings.TrimSpace(s.getenv("HEX_API_TOKEN")); t != "" {
		return t, nil
	}
	if s.path != "" {
		b, err := os.ReadFile(s.path)
		if err != nil {
			return "", fmt.Errorf("read token file %s: %w", s.path, pathError(err))
		}
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, nil
		}
		return "", fmt.Errorf("read token file %s: file is empty: %w", s.path, ErrNoToken)
	}
	return "", ErrNoToken
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
	return string(s), nil
}
