package grammar

import "testing"

func TestAdvanceText(t *testing.T) {
	tok := llama3(t)
	g, err := CompileChoice(tok, []string{"yes please", "no"})
	if err != nil {
		t.Fatal(err)
	}
	m := g.NewMatcher()
	if err := m.AdvanceText("yes p"); err != nil {
		t.Fatal(err)
	}
	if err := m.AdvanceText("x"); err == nil {
		t.Fatal("rejected text accepted")
	}
	if m.CanEnd() {
		t.Fatal("complete after a prefix")
	}
	if err := m.AdvanceText("lease"); err != nil || !m.Done() {
		t.Fatalf("after the whole choice: %v, done %v", err, m.Done())
	}
	if err := m.Rollback(1); err != nil || m.CanEnd() {
		t.Fatalf("rollback: %v, can end %v", err, m.CanEnd())
	}
}
