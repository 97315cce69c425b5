package chat

import "strings"

// Gonja parses Jinja's conditional expression (a if c else b) only as the
// whole of a {{ }} output. Real templates also put it inside parentheses,
// call arguments, lists and {% set %} (Gemma 3's: '<start_of_turn>' + role +
// (first_user_prefix if loop.first else "")), which gonja refuses as
// "Unbalanced parenthesis". rewriteInlineIf rewrites each conditional
// expression, before parsing, into an equivalent gonja reads:
//
//	X if C else Y  ->  ((C) and [(X)] or [(Y)])[0]
//
// Gonja's and/or return an operand and evaluate their right side only when
// needed, as Python's do, and a one-element list is always true, so only
// the chosen branch is evaluated (a raise_exception in the other one does
// not fire). A missing else gives an undefined value, as in Jinja.
//
// The rewrite leaves strings, comments and raw blocks alone, keeps every
// newline (error lines stay right), and does not touch the top level of
// {% for %} (where "if" filters the loop) or of {% if %} and {% elif %}.

// undefinedName is a variable no template defines: the value of a
// conditional expression without else whose condition is false.
const undefinedName = "__ftune_undefined"

func rewriteInlineIf(src string) string {
	if !strings.Contains(src, "if") {
		return src
	}
	var out strings.Builder
	for i := 0; i < len(src); {
		switch {
		case strings.HasPrefix(src[i:], "{#"):
			end := len(src)
			if j := strings.Index(src[i+2:], "#}"); j >= 0 {
				end = i + 2 + j + 2
			}
			out.WriteString(src[i:end])
			i = end
		case (strings.HasPrefix(src[i:], "{{") && closeOf(src, i+2, "}}") == len(src)) ||
			(strings.HasPrefix(src[i:], "{%") && closeOf(src, i+2, "%}") == len(src)):
			// An unclosed tag is left as it is, for the parser to report.
			out.WriteString(src[i:])
			i = len(src)
		case strings.HasPrefix(src[i:], "{{"):
			end := closeOf(src, i+2, "}}")
			body := src[i+2 : end]
			lead, inner, trail := splitTrim(body)
			out.WriteString("{{" + lead + rewriteSegment(inner, true, 0) + trail + "}}")
			i = end + 2
		case strings.HasPrefix(src[i:], "{%"):
			end := closeOf(src, i+2, "%}")
			body := src[i+2 : end]
			lead, inner, trail := splitTrim(body)
			if isRawTag(inner) {
				stop := rawEnd(src, end+2)
				out.WriteString(src[i:stop])
				i = stop
				continue
			}
			out.WriteString("{%" + lead + rewriteTag(inner) + trail + "%}")
			i = end + 2
		default:
			next := len(src)
			if j := strings.Index(src[i:], "{"); j >= 0 {
				next = i + j
				if next == i {
					next++ // a lone '{' in text
				}
			}
			out.WriteString(src[i:next])
			i = next
		}
	}
	return out.String()
}

// closeOf finds the delimiter that ends a tag opened before from, skipping
// strings; an unclosed tag ends the text (the parser reports it).
func closeOf(src string, from int, delim string) int {
	for i := from; i < len(src); i++ {
		switch c := src[i]; {
		case c == '\'' || c == '"':
			i = stringEnd(src, i) - 1
		case strings.HasPrefix(src[i:], delim):
			return i
		}
	}
	return len(src)
}

// stringEnd returns the index after the string literal starting at i.
func stringEnd(s string, i int) int {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case q:
			return j + 1
		}
	}
	return len(s)
}

// splitTrim separates a tag body's whitespace-control marks and spaces.
func splitTrim(body string) (lead, inner, trail string) {
	l := 0
	if l < len(body) && (body[l] == '-' || body[l] == '+') {
		l++
	}
	r := len(body)
	if r > l && (body[r-1] == '-' || body[r-1] == '+') {
		r--
	}
	return body[:l], body[l:r], body[r:]
}

func isRawTag(inner string) bool { return strings.TrimSpace(inner) == "raw" }

// rawEnd returns the index after the {% endraw %} that closes a raw block.
func rawEnd(src string, from int) int {
	for i := from; i < len(src); i++ {
		if strings.HasPrefix(src[i:], "{%") {
			end := closeOf(src, i+2, "%}")
			if end == len(src) {
				break
			}
			_, inner, _ := splitTrim(src[i+2 : end])
			if strings.TrimSpace(inner) == "endraw" {
				return end + 2
			}
		}
	}
	return len(src)
}

// rewriteTag rewrites the expressions of a {% %} statement: the value of a
// set in full, elsewhere only what is inside brackets.
func rewriteTag(inner string) string {
	trimmed := strings.TrimLeft(inner, " \t\r\n")
	if strings.HasPrefix(trimmed, "set ") || strings.HasPrefix(trimmed, "set\t") {
		if eq := topLevelAssign(inner); eq >= 0 {
			return rewriteSegment(inner[:eq], false, 0) + "=" + rewriteSegment(inner[eq+1:], true, 0)
		}
	}
	return rewriteSegment(inner, false, 0)
}

// topLevelAssign finds the '=' of a set statement (not ==, <=, >=, !=).
func topLevelAssign(s string) int {
	return topLevelIndex(s, 0, func(i int) bool {
		if s[i] != '=' {
			return false
		}
		prev, next := byte(0), byte(0)
		if i > 0 {
			prev = s[i-1]
		}
		if i+1 < len(s) {
			next = s[i+1]
		}
		return next != '=' && prev != '=' && prev != '<' && prev != '>' && prev != '!'
	})
}

// topLevelIndex returns the first index at or after from, outside string
// literals and brackets, where at holds; -1 when there is none.
func topLevelIndex(s string, from int, at func(i int) bool) int {
	depth := 0
	for i := from; i < len(s); i++ {
		switch s[i] {
		case '\'', '"':
			i = stringEnd(s, i) - 1
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
		default:
			if depth == 0 && at(i) {
				return i
			}
		}
	}
	return -1
}

// rewriteSegment rewrites an expression: the contents of every bracket
// pair, element by element, and, when whole is set, a conditional at the
// segment's own top level. depth is the nesting of the brackets the
// rewritten text puts around s; past maxNesting the rest is left as it is
// (checkNesting then refuses the template), so the recursion here stays
// bounded too.
func rewriteSegment(s string, whole bool, depth int) string {
	if depth > maxNesting {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\'' || c == '"':
			e := stringEnd(s, i)
			b.WriteString(s[i:e])
			i = e
		case c == '(' || c == '[' || c == '{':
			e := matchingClose(s, i)
			b.WriteByte(c)
			b.WriteString(rewriteElements(s[i+1:e], depth+1))
			if e < len(s) {
				b.WriteByte(s[e])
			}
			i = e + 1
		default:
			b.WriteByte(c)
			i++
		}
	}
	if !whole {
		return b.String()
	}
	return rewriteConditional(b.String(), depth)
}

// rewriteElements rewrites each comma- or colon-separated element of a
// bracket's contents as a whole expression.
func rewriteElements(s string, depth int) string {
	var b strings.Builder
	separator := func(i int) bool { return s[i] == ',' || s[i] == ':' }
	start := 0
	for i := topLevelIndex(s, 0, separator); i >= 0; i = topLevelIndex(s, start, separator) {
		b.WriteString(rewriteElement(s[start:i], depth))
		b.WriteByte(s[i])
		start = i + 1
	}
	b.WriteString(rewriteElement(s[start:], depth))
	return b.String()
}

// rewriteElement rewrites one element of a bracket's contents; a keyword
// argument (name=value) keeps its name outside the rewritten value.
func rewriteElement(e string, depth int) string {
	if eq := topLevelAssign(e); eq >= 0 && isIdentifier(strings.TrimSpace(e[:eq])) {
		return e[:eq+1] + rewriteSegment(e[eq+1:], true, depth)
	}
	return rewriteSegment(e, true, depth)
}

func isIdentifier(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := range len(s) {
		if c := s[i]; c == '.' || !isNameByte(s, i) {
			return false
		}
	}
	return true
}

// matchingClose returns the index of the bracket closing the one at i, or
// len(s) when it is unbalanced (the parser reports it).
func matchingClose(s string, i int) int {
	depth := 0
	for j := i; j < len(s); j++ {
		switch c := s[j]; c {
		case '\'', '"':
			j = stringEnd(s, j) - 1
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			if depth--; depth == 0 {
				return j
			}
		}
	}
	return len(s)
}

// rewriteConditional rewrites "X if C else Y" at the top level of an
// expression whose brackets are already rewritten; Y may itself be a
// conditional (they nest to the right), three brackets deeper each.
func rewriteConditional(s string, depth int) string {
	at := topLevelWord(s, "if", 0)
	if at < 0 || depth > maxNesting {
		return s
	}
	x, rest := s[:at], s[at+2:]
	cond, alt := rest, undefinedName
	if el := topLevelWord(rest, "else", 0); el >= 0 {
		cond, alt = rest[:el], rewriteConditional(rest[el+4:], depth+3)
	}
	return "((" + cond + ") and [(" + x + ")] or [(" + alt + ")])[0]"
}

// topLevelWord finds the keyword w outside strings and brackets, as a
// whole name.
func topLevelWord(s, w string, from int) int {
	return topLevelIndex(s, from, func(i int) bool {
		return strings.HasPrefix(s[i:], w) && !isNameByte(s, i-1) && !isNameByte(s, i+len(w))
	})
}

func isNameByte(s string, i int) bool {
	if i < 0 || i >= len(s) {
		return false
	}
	c := s[i]
	return c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
