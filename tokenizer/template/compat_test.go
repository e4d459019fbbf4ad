package template

import (
	"errors"
	"testing"
	"time"
)

type compatCase struct {
	name    string
	src     string
	want    string // expected output
	raise   string // expected raise_exception message
	wantErr string // Python failed with this error; we must fail too
}

func compatVars(t testing.TB) map[string]any {
	v, err := ParseJSON([]byte(compatVarsJSON))
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]any{}
	v.(*Map).Range(func(k string, val any) bool {
		vars[k] = val
		return true
	})
	return vars
}

var fixedNow = func() time.Time { return time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC) }

// TestCompat checks feature by feature that rendering matches Python Jinja2.
func TestCompat(t *testing.T) {
	vars := compatVars(t)
	for _, c := range compatCases {
		t.Run(c.name, func(t *testing.T) {
			tpl, err := Parse(c.src)
			var got string
			if err == nil {
				got, err = tpl.Execute(vars, WithNow(fixedNow))
			}
			switch {
			case c.raise != "":
				var te *TemplateError
				if !errors.As(err, &te) || te.Message != c.raise {
					t.Fatalf("want TemplateError %q, got %q, %v", c.raise, got, err)
				}
			case c.wantErr != "":
				if err == nil {
					t.Fatalf("Python fails with %s; we rendered %q", c.wantErr, got)
				}
			default:
				if err != nil {
					t.Fatalf("error: %v", err)
				}
				if got != c.want {
					t.Fatalf("\n got: %q\nwant: %q", got, c.want)
				}
			}
		})
	}
}
