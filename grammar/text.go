package grammar

import "fmt"

// AdvanceText accepts text's bytes as if a token had spelled them: a lazy
// grammar that starts in the middle of a token (after a trigger) takes
// the token's remaining bytes this way. Text the grammar rejects is an
// error and leaves the matcher as it was; it counts as one accepted token
// for Rollback.
func (m *Matcher) AdvanceText(text string) error {
	if m.ended {
		return fmt.Errorf("grammar: text %q after the end of generation", text)
	}
	next := m.walk(m.cur, text)
	if next == m.a.dead {
		return fmt.Errorf("grammar: text %q is not allowed here", text)
	}
	m.hist = append(m.hist, history{m.cur, m.ended})
	m.cur = next
	return nil
}
