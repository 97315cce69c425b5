package format

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

var yamlLine = regexp.MustCompile(`line (\d+):`)

// ExplainYAML makes a YAML parser error about a tab say so. YAML indents
// with spaces only, and the parser's "found character that cannot start
// any token" does not say which character; a data file edited with tabs
// gave only that. data is the text that was parsed; other errors come
// back unchanged.
func ExplainYAML(data []byte, err error) error {
	if err == nil || !strings.Contains(err.Error(), "cannot start any token") {
		return err
	}
	m := yamlLine.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	n, _ := strconv.Atoi(m[1])
	lines := strings.Split(string(data), "\n")
	if n < 1 || n > len(lines) {
		return err
	}
	col := strings.IndexByte(lines[n-1], '\t')
	if col < 0 {
		return err
	}
	return fmt.Errorf("line %d column %d: a tab character; YAML indents with spaces only (replace the tab with spaces): %w", n, col+1, err)
}
