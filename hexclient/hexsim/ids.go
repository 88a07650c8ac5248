package hexsim

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
)

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// wellFormedUUID accepts any 8-4-4-4-12 hex UUID (Hex's schema asks for version 4;
// the sim is lenient so that hand-written test ids work).
func wellFormedUUID(s string) bool { return uuidRE.MatchString(s) }

// wellFormedToken accepts hxtp_ (personal) and hxtw_ (workspace) tokens.
func wellFormedToken(t string) bool {
	rest, ok := strings.CutPrefix(t, "hxtp_")
	if !ok {
		rest, ok = strings.CutPrefix(t, "hxtw_")
	}
	if !ok || rest == "" {
		return false
	}
	for _, c := range rest {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// hashToken is how a token appears in the ledger: never the token itself.
func hashToken(t string) string {
	if t == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(t))
	return "sha256:" + hex.EncodeToString(sum[:6])
}

// newUUID returns a version 4 UUID drawn from rng (so ids match Hex's schema pattern).
func newUUID(rng *rand.Rand) string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// newTraceID returns a 32-hex-digit trace id drawn from rng.
func newTraceID(rng *rand.Rand) string {
	return fmt.Sprintf("%016x%016x", rng.Uint64(), rng.Uint64())
}
