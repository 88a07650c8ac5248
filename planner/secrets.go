package planner

import (
	"regexp"

	"gopkg.in/yaml.v3"
)

// tokenRE matches what looks like a Hex API token: a personal (hxtp_) or workspace
// (hxtw_) token prefix followed by token characters.
var tokenRE = regexp.MustCompile(`(?i)hxt[pw]_[A-Za-z0-9_\-.~+/=]{4,}`)

// looksLikeToken reports whether s contains something that looks like a Hex API token.
func looksLikeToken(s string) bool { return tokenRE.MatchString(s) }

// redactedValue replaces what looks like a token once it has been reported, so that no
// later message (which may quote a value) can repeat it.
const redactedValue = "[redacted]"

// findTokens walks every key, value, anchor, tag and comment of the document and
// reports each one that looks like a Hex API token, without ever repeating it, and
// replaces it in the node tree by redactedValue. It reports whether it found one.
func (d *decoder) findTokens(n *yaml.Node, field string) bool {
	if n == nil || d.nodes > maxNodes {
		return false
	}
	d.nodes++
	found := false
	if looksLikeToken(n.HeadComment) || looksLikeToken(n.LineComment) || looksLikeToken(n.FootComment) {
		d.errorf(n, field, "a comment holds what looks like a Hex API token: %s", tokenMessage)
		n.HeadComment, n.LineComment, n.FootComment = redact(n.HeadComment), redact(n.LineComment), redact(n.FootComment)
		found = true
	}
	if n.Kind == yaml.AliasNode {
		return found // the anchored node is checked where it is defined
	}
	if looksLikeToken(n.Value) || looksLikeToken(n.Anchor) || looksLikeToken(n.Tag) {
		d.tokenAt(n, field, "looks like a Hex API token: "+tokenMessage)
		n.Value, n.Anchor, n.Tag = redact(n.Value), redact(n.Anchor), redact(n.Tag)
		found = true
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			found = d.findTokens(c, field) || found
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			found = d.findTokens(c, index(field, i)) || found
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			name := k.Value
			if k.Kind != yaml.ScalarNode || looksLikeToken(name) {
				name = "(key)"
			}
			if looksLikeToken(k.Value) {
				d.tokenAt(k, join(field, name), "a key looks like a Hex API token: "+tokenMessage)
				k.Value = redact(k.Value)
				found = true
			} else {
				found = d.findTokens(k, join(field, name)) || found
			}
			found = d.findTokens(v, join(field, name)) || found
		}
	}
	return found
}

func redact(s string) string { return tokenRE.ReplaceAllString(s, redactedValue) }

// tokenAt reports a token found at field (once per field: a `token:` key is also
// refused for its name).
func (d *decoder) tokenAt(n *yaml.Node, field, msg string) {
	if d.tokenFields == nil {
		d.tokenFields = map[string]bool{}
	}
	d.tokenFields[field] = true
	d.errorf(n, field, "%s", msg)
}
