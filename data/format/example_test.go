package format_test

import (
	"fmt"
	"io"
	"strings"

	"github.com/ftune/ftune/data/format"
)

func Example() {
	data := `{"conversations":[{"from":"human","value":"Capital of Peru?"},{"from":"gpt","value":"Lima"}]}
{"conversations":[{"from":"human","value":"Capital of Chad?"},{"from":"robot","value":"N'Djamena"}]}
`
	r, _ := format.NewReader(strings.NewReader(data), "quiz.jsonl", format.KindJSONL, format.Options{Skip: true})
	for {
		ex, err := r.Next()
		if err == io.EOF {
			break
		}
		fmt.Print(ex.Source)
		for _, m := range ex.Messages {
			fmt.Printf(" %s: %q", m.Role, m.Content)
		}
		fmt.Println()
	}
	rep := r.Report()
	fmt.Println(r.Mapping().Shape, rep.Examples, "read,", rep.Skipped, "skipped:", rep.SkipErrors[0])
	// Output:
	// quiz.jsonl:1 user: "Capital of Peru?" assistant: "Lima"
	// sharegpt 1 read, 1 skipped: quiz.jsonl:2:1: conversations[1]: unknown role "robot" (want system (or developer), user (or human, prompter), assistant (or gpt, model, bot, chatgpt, bing, bard), tool (or function, ipython, observation) or function_call)
}
