package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/nn"
)

func newGenerateCmd() *cobra.Command {
	var (
		modelName, adapter, prompt string
		raw                        bool
		opt                        nn.GenerateOptions
	)
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Generate text: one-shot, or an interactive chat when no prompt is given",
		Example: `  ftune generate --prompt "What is the capital of France?"
  ftune generate --adapter runs/latest/adapter --prompt "Symbol of iron?"
  ftune generate --raw --prompt "It was a dark and stormy night" --temperature 0.8 --top-p 0.9
  ftune generate            # interactive chat; an empty line or Ctrl-D ends it`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := loadModel(modelName)
			if err != nil {
				return err
			}
			if adapter != "" {
				a, err := lora.Load(l.model, adapter, "default")
				if err != nil {
					return err
				}
				if err := a.Attach(l.model); err != nil {
					return err
				}
			}
			opt.StopTokens = l.stopTokens()
			w := cmd.OutOrStdout()
			if prompt != "" {
				return l.reply(w, []chat.Message{{Role: "user", Content: prompt}}, raw, opt)
			}
			return l.chatLoop(cmd.InOrStdin(), w, opt)
		},
	}
	f := cmd.Flags()
	f.StringVar(&modelName, "model", "tiny-base", "base model: a Hugging Face folder or the embedded tiny-base")
	f.StringVar(&adapter, "adapter", "", "PEFT LoRA adapter folder to apply")
	f.StringVarP(&prompt, "prompt", "p", "", "prompt (omit for an interactive chat)")
	f.BoolVar(&raw, "raw", false, "continue the prompt as plain text instead of a chat turn")
	f.IntVar(&opt.MaxNewTokens, "max-tokens", 64, "maximum new tokens")
	f.Float64Var(&opt.Temperature, "temperature", 0, "sampling temperature (0 = greedy)")
	f.IntVar(&opt.TopK, "top-k", 0, "sample from the k most likely tokens (0 = all)")
	f.Float64Var(&opt.TopP, "top-p", 0, "nucleus sampling probability (0 = off)")
	f.Uint64Var(&opt.Seed, "seed", 0, "sampling seed")
	return cmd
}

// reply renders the conversation, generates and streams the answer.
func (l *loaded) reply(w io.Writer, msgs []chat.Message, raw bool, opt nn.GenerateOptions) error {
	text := msgs[len(msgs)-1].Content
	if !raw {
		var err error
		if text, err = l.template.Render(msgs, true); err != nil {
			return err
		}
	}
	enc, err := l.tok.Encode(text, false)
	if err != nil {
		return err
	}
	var out []int
	printed := 0
	var werr error
	opt.OnToken = func(id int) bool {
		out = append(out, id)
		s, err := l.tok.Decode(out, true)
		if err != nil {
			werr = err
			return false
		}
		// Print only complete characters: a byte-level token can end in
		// the middle of one.
		if len(s) > printed && utf8.ValidString(s[printed:]) && !strings.HasSuffix(s, "\uFFFD") {
			_, werr = io.WriteString(w, s[printed:])
			printed = len(s)
		}
		return werr == nil
	}
	if _, err := l.model.Generate(enc.IDs, opt); err != nil {
		return err
	}
	if werr != nil {
		return werr
	}
	_, err = fmt.Fprintln(w)
	return err
}

func (l *loaded) chatLoop(in io.Reader, w io.Writer, opt nn.GenerateOptions) error {
	sc := bufio.NewScanner(in)
	var msgs []chat.Message
	for {
		fmt.Fprint(w, "> ")
		if !sc.Scan() || strings.TrimSpace(sc.Text()) == "" {
			fmt.Fprintln(w)
			return sc.Err()
		}
		msgs = append(msgs, chat.Message{Role: "user", Content: sc.Text()})
		var sb strings.Builder
		if err := l.reply(io.MultiWriter(w, &sb), msgs, false, opt); err != nil {
			return err
		}
		msgs = append(msgs, chat.Message{Role: "assistant", Content: strings.TrimSpace(sb.String())})
	}
}
