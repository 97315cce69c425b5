package prep

import (
	"errors"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/data/format"
)

// TestTemplateWithoutAnswers: a template that never writes the assistant's
// turns (it tests m.role == 'gpt', a name ftune renames to assistant) is
// refused, naming the template and the record, rather than trained on the
// end-of-text token alone; with or without a generation prompt.
func TestTemplateWithoutAnswers(t *testing.T) {
	const turns = `{% for m in messages %}{% if m.role == 'user' %}<|im_start|>user
{{ m.content }}<|im_end|>
{% elif m.role == 'gpt' %}<|im_start|>assistant
{{ m.content }}<|im_end|>
{% endif %}{% endfor %}`
	for name, src := range map[string]string{
		"no generation prompt":   turns,
		"with generation prompt": turns + "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
	} {
		t.Run(name, func(t *testing.T) {
			tpl, err := chat.New("gpt-roles.jinja", src, "", "<|endoftext|>")
			if err != nil {
				t.Fatal(err)
			}
			p := &Preprocessor{Enc: byteEncoder{}, Tmpl: templateRenderer(tpl), TemplateName: "gpt-roles.jinja", EOS: fakeEOT}
			ex := format.Example{Messages: msgs("user", "Capital of Peru?", "assistant", "Lima"), Source: "d.jsonl:3"}
			_, _, err = p.Tokenize(ex)
			if !errors.Is(err, ErrNoAnswer) {
				t.Fatalf("error %v, want ErrNoAnswer", err)
			}
			for _, want := range []string{"d.jsonl:3", `"gpt-roles.jinja"`, "message 1"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %s", err, want)
				}
			}
		})
	}
}
