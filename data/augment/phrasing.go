package augment

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
)

// Rotator rewrites an instruction into another phrasing of the same
// request. Groups hold equivalent templates whose slots are written {name}:
//
//	{"What is the capital of {country}?", "Name the capital city of {country}."}
//
// A user message that matches one template of a group entirely is rewritten
// with a template of the same group picked at random, slots carried over.
type Rotator struct {
	groups [][]phrasing
}

type phrasing struct {
	text  string
	re    *regexp.Regexp
	slots []string
}

var slotRE = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// NewRotator compiles template groups. Every template of a group must use
// the same slots, so that any of them can be filled from any other.
func NewRotator(groups [][]string) (*Rotator, error) {
	rot := &Rotator{}
	for gi, g := range groups {
		if len(g) < 2 {
			return nil, fmt.Errorf("phrasing group %d: want at least two templates", gi)
		}
		var ps []phrasing
		for _, t := range g {
			p, err := compilePhrasing(t)
			if err != nil {
				return nil, fmt.Errorf("phrasing group %d: %w", gi, err)
			}
			if len(ps) > 0 && !sameSet(p.slots, ps[0].slots) {
				return nil, fmt.Errorf("phrasing group %d: %q has slots %v, %q has %v", gi, t, p.slots, ps[0].text, ps[0].slots)
			}
			ps = append(ps, p)
		}
		rot.groups = append(rot.groups, ps)
	}
	return rot, nil
}

func compilePhrasing(t string) (phrasing, error) {
	p := phrasing{text: t}
	var re strings.Builder
	re.WriteString("^")
	last := 0
	for _, m := range slotRE.FindAllStringSubmatchIndex(t, -1) {
		re.WriteString(regexp.QuoteMeta(t[last:m[0]]))
		name := t[m[2]:m[3]]
		for _, s := range p.slots {
			if s == name {
				return p, fmt.Errorf("template %q uses slot {%s} twice", t, name)
			}
		}
		p.slots = append(p.slots, name)
		re.WriteString("(.+?)")
		last = m[1]
	}
	re.WriteString(regexp.QuoteMeta(t[last:]) + "$")
	if len(p.slots) == 0 {
		return p, fmt.Errorf("template %q has no {slot}", t)
	}
	p.re = regexp.MustCompile(re.String())
	return p, nil
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		found := false
		for _, y := range b {
			found = found || x == y
		}
		if !found {
			return false
		}
	}
	return true
}

// match finds the group and template text matches, with its slot values.
func (rot *Rotator) match(text string) (group, index int, values map[string]string) {
	for gi, g := range rot.groups {
		for pi, p := range g {
			if m := p.re.FindStringSubmatch(text); m != nil {
				values = map[string]string{}
				for k, s := range p.slots {
					values[s] = m[k+1]
				}
				return gi, pi, values
			}
		}
	}
	return -1, -1, nil
}

func fill(t string, values map[string]string) string {
	return slotRE.ReplaceAllStringFunc(t, func(s string) string { return values[s[1:len(s)-1]] })
}

// Rotate rewrites the first user message of ex with another phrasing of
// its group. ok is false (and ex returned as is) when no template matches.
func (rot *Rotator) Rotate(ex format.Example, r *prep.Rand) (out format.Example, ok bool) {
	for i, m := range ex.Messages {
		if m.Role != format.RoleUser {
			continue
		}
		g, cur, values := rot.match(m.Content)
		if g < 0 {
			return ex, false
		}
		next := r.Intn(len(rot.groups[g]) - 1)
		if next >= cur {
			next++ // always a different phrasing
		}
		out = ex
		out.Messages = append([]format.Message(nil), ex.Messages...)
		out.Messages[i].Content = fill(rot.groups[g][next].text, values)
		return out, true
	}
	return ex, false
}
