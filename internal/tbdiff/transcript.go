package tbdiff

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Transcript is what one sequence saw on one server: lines starting with
// ">" (what the client did), "<" (a packet the server sent, or CLOSED) and
// "=" (a derived fact: a REST answer, a timing compared with the server's
// configured value). Two servers behave alike on a sequence when their
// normalised transcripts are equal.
type Transcript struct {
	mu    sync.Mutex
	lines []string
	subst map[string]string // literal run-specific strings -> placeholders
}

func newTranscript() *Transcript { return &Transcript{subst: map[string]string{}} }

// Alias makes every later occurrence of s appear as name (a device name or
// token this run chose, an id the server generated).
func (t *Transcript) Alias(s, name string) {
	if s == "" {
		return
	}
	t.mu.Lock()
	t.subst[s] = name
	t.mu.Unlock()
}

func (t *Transcript) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, t.normalise(line))
}

// Sent records what the client did.
func (t *Transcript) Sent(format string, args ...any) { t.add("> " + fmt.Sprintf(format, args...)) }

// Got records a packet from the server.
func (t *Transcript) Got(p Packet) { t.add("< " + p.String()) }

// GotCanonical records a packet whose JSON payload's member order is the
// server's database order, not behaviour (ThingsBoard answers {} with the
// client attributes as its attribute table lists them): members sorted.
func (t *Transcript) GotCanonical(p Packet) {
	if p.Type == pPublish {
		var v any
		if json.Unmarshal(p.Payload, &v) == nil {
			b, _ := json.Marshal(v)
			p.Payload = b
			t.add("< " + p.String() + " (members sorted)")
			return
		}
	}
	t.Got(p)
}

// Note records a derived fact.
func (t *Transcript) Note(format string, args ...any) { t.add("= " + fmt.Sprintf(format, args...)) }

// Lines returns the normalised lines.
func (t *Transcript) Lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.lines...)
}

var (
	uuidRe = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	// A generated access token in a provisioning answer: ThingsBoard's are 20
	// alphanumeric characters, and so are the emulator's.
	// Payloads are shown %q-quoted, so the quotes may be escaped.
	credRe = regexp.MustCompile(`(credentialsValue\\?":\\?")[A-Za-z0-9]{20}`)
	tsRe   = regexp.MustCompile(`(\\?"ts\\?":)\d{13}`)
)

// normalise replaces only what must differ between two servers: what this
// run chose (aliases), generated ids and tokens, and wall-clock timestamps.
func (t *Transcript) normalise(s string) string {
	// Longest first, so a name that contains another is replaced whole.
	keys := make([]string, 0, len(t.subst))
	for k := range t.subst {
		keys = append(keys, k)
	}
	for i := range keys {
		for j := i + 1; j < len(keys); j++ {
			if len(keys[j]) > len(keys[i]) {
				keys[i], keys[j] = keys[j], keys[i]
			}
		}
	}
	for _, k := range keys {
		s = strings.ReplaceAll(s, k, t.subst[k])
	}
	s = credRe.ReplaceAllString(s, `${1}<generated-token>`)
	s = uuidRe.ReplaceAllString(s, "<uuid>")
	return tsRe.ReplaceAllString(s, `${1}<ts>`)
}

// payloadString shows text payloads as they are and others by size and digest.
func payloadString(b []byte) string {
	if len(b) == 0 {
		return "(empty)"
	}
	if len(b) <= 400 && utf8.Valid(b) && printable(b) {
		return fmt.Sprintf("%q", b)
	}
	sum := sha256.Sum256(b)
	return fmt.Sprintf("<%d bytes sha256:%s>", len(b), hex.EncodeToString(sum[:6]))
}

func printable(b []byte) bool {
	for _, c := range string(b) {
		if c < 0x20 && c != '\n' && c != '\t' {
			return false
		}
	}
	return true
}

// ratio renders a measured duration against the server's configured one,
// rounded to a tenth: both servers match when they act at the same share of
// their own setting (the emulator can run with shorter settings than
// ThingsBoard's defaults and still be compared).
func ratio(measured, configured time.Duration) string {
	if configured <= 0 {
		return "n/a"
	}
	r := float64(measured) / float64(configured)
	return fmt.Sprintf("%.1fx", r)
}

// Diff returns a unified-style listing of where b departs from a, or "".
func Diff(aName string, a []string, bName string, b []string) string {
	if strings.Join(a, "\n") == strings.Join(b, "\n") {
		return ""
	}
	// Longest common subsequence, small inputs.
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", aName, bName)
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			sb.WriteString("  " + a[i] + "\n")
			i++
			j++
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			sb.WriteString("+ " + b[j] + "\n")
			j++
		default:
			sb.WriteString("- " + a[i] + "\n")
			i++
		}
	}
	return sb.String()
}
