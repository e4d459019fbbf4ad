package toolcall

// jsonEnd scans the JSON value at the start of s (after leading
// whitespace). It returns the index just past the value, or -1 when s
// ends inside it (more text is needed), or -2 when s does not start with
// an object or array, or brackets do not balance. It checks nesting and
// strings only; callers validate the value with encoding/json.
func jsonEnd(s string) int {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	if i == len(s) {
		return -1
	}
	if s[i] != '{' && s[i] != '[' {
		return -2
	}
	var stack []byte
	inStr, esc := false, false
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case inStr && esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case inStr && c == '"':
			inStr = false
		case inStr:
		case c == '"':
			inStr = true
		case c == '{':
			stack = append(stack, '}')
		case c == '[':
			stack = append(stack, ']')
		case c == '}' || c == ']':
			if len(stack) == 0 || stack[len(stack)-1] != c {
				return -2
			}
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return i + 1
			}
		}
	}
	return -1
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' }

func trimSpaceLeft(s string) string {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return s[i:]
}
