package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ftune/ftune"
)

func newGenerateCmd() *cobra.Command {
	var (
		modelName, adapter, prompt, system string
		raw, think, noThink                bool
		opt                                ftune.GenerateOptions
	)
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Generate text: one-shot, or an interactive chat when no prompt is given",
		Long: `Generate text with a base model, or base + adapter (the adapter's own base is
loaded: see --model).

With --prompt, one reply is printed as it is produced. Without it, an
interactive chat starts; it keeps the conversation, and when the next prompt
would not leave room for --max-tokens in the model's context it drops the
oldest turns and says so. In the chat, /reset forgets the conversation,
/help lists the commands, and /exit, an empty line or Ctrl-D ends it.

Thinking models (Qwen3) write their reasoning in a <think> block before the
answer; it is shown as it comes, and the template leaves it out of the
history of later turns. --no-thinking passes enable_thinking=false to the
template (an answer without thinking), --thinking true; neither leaves the
template's default. A reply cut by --max-tokens while still thinking is said.`,
		Example: `  ftune generate --prompt "What is the capital of France?"
  ftune generate --adapter runs/latest/adapter --prompt "Symbol of iron?"
  ftune generate --system "Answer in one word." --prompt "Capital of Peru?"
  ftune generate --raw --prompt "It was a dark and stormy night" --temperature 0.8 --top-p 0.9
  ftune generate --model ./Qwen3-0.6B --no-thinking --prompt "Capital of Peru?"
  ftune generate            # interactive chat`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if raw && system != "" {
				return usageError{errors.New("--system applies to chat turns; it cannot be used with --raw")}
			}
			if think && noThink {
				return usageError{errors.New("--thinking and --no-thinking contradict each other: give one")}
			}
			if opt.MaxNewTokens < 1 {
				return usageError{fmt.Errorf("--max-tokens %d: want at least 1", opt.MaxNewTokens)}
			}
			if think || noThink {
				if raw {
					return usageError{errors.New("--thinking and --no-thinking set the chat template's enable_thinking; --raw uses no template")}
				}
				opt.Thinking = &think
			}
			m, err := loadModel(cmd, modelName, adapter)
			if err != nil {
				return err
			}
			w, ew := cmd.OutOrStdout(), cmd.ErrOrStderr()
			opt.OnText = func(s string) error { _, err := io.WriteString(w, s); return err }
			ctx := cmd.Context()
			if prompt == "" {
				return chatLoop(ctx, m, cmd.InOrStdin(), w, ew, system, opt)
			}
			var r ftune.Reply
			if raw {
				r, err = m.Generate(ctx, prompt, opt)
			} else {
				r, err = m.NewConversation(system).Send(ctx, prompt, opt)
			}
			fmt.Fprintln(w)
			if err != nil {
				return err
			}
			noteStop(ew, m, r)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&modelName, "model", "", modelFlagHelp)
	f.StringVar(&adapter, "adapter", "", "PEFT LoRA adapter folder to apply")
	f.StringVarP(&prompt, "prompt", "p", "", "prompt (omit for an interactive chat)")
	f.StringVar(&system, "system", "", "system message for the chat")
	f.BoolVar(&raw, "raw", false, "continue the prompt as plain text instead of a chat turn")
	f.IntVar(&opt.MaxNewTokens, "max-tokens", 64, "maximum new tokens per reply")
	f.Float64Var(&opt.Temperature, "temperature", 0, "sampling temperature (0 = greedy)")
	f.IntVar(&opt.TopK, "top-k", 0, "sample from the k most likely tokens (0 = all)")
	f.Float64Var(&opt.TopP, "top-p", 0, "nucleus sampling probability (0 = off)")
	f.Uint64Var(&opt.Seed, "seed", 0, "sampling seed")
	f.BoolVar(&think, "thinking", false, "pass enable_thinking=true to the chat template (thinking models such as Qwen3)")
	f.BoolVar(&noThink, "no-thinking", false, "pass enable_thinking=false to the chat template: answer without a <think> block")
	return cmd
}

// noteStop tells the user when a reply was cut by the model's context, or
// by --max-tokens before the model finished thinking (no answer yet).
func noteStop(w io.Writer, m *ftune.Model, r ftune.Reply) {
	if r.Stopped == ftune.StopContext {
		fmt.Fprintf(w, "note: the reply stopped at the end of the model's context (%d tokens)\n", m.Net.Config.MaxPositions)
	}
	if r.Stopped == ftune.StopLength && ftune.ThinkingOpen(r.Text) {
		fmt.Fprintf(w, "note: the reply stopped after %d tokens while the model was still thinking, before its answer: raise --max-tokens, or use --no-thinking\n", r.Tokens)
	}
}

const chatHelp = `commands: /reset forgets the conversation, /help shows this, /exit (or an empty line, or Ctrl-D) ends the chat`

func chatLoop(ctx context.Context, m *ftune.Model, in io.Reader, w, ew io.Writer, system string, opt ftune.GenerateOptions) error {
	conv := m.NewConversation(system)
	fmt.Fprintf(ew, "chat with %s (context %d tokens); %s\n", m.Dir, m.Net.Config.MaxPositions, chatHelp)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for {
		fmt.Fprint(w, "> ")
		if !sc.Scan() {
			fmt.Fprintln(w)
			return sc.Err()
		}
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line == "/exit" || line == "/quit":
			return nil
		case line == "/reset":
			conv.Reset()
			fmt.Fprintln(w, "(conversation cleared)")
			continue
		case line == "/help":
			fmt.Fprintln(w, chatHelp)
			continue
		case strings.HasPrefix(line, "/"):
			fmt.Fprintf(w, "unknown command %s; %s\n", strings.Fields(line)[0], chatHelp)
			continue
		}
		r, err := conv.Send(ctx, line, opt)
		fmt.Fprintln(w)
		if errors.Is(err, ftune.ErrContextFull) {
			fmt.Fprintln(ew, "error:", err) // the message was not kept; the chat goes on
			continue
		}
		if err != nil {
			return err
		}
		if r.DroppedTurns > 0 {
			fmt.Fprintf(ew, "note: dropped the %d oldest messages to fit the model's context (%d tokens)\n", r.DroppedTurns, m.Net.Config.MaxPositions)
		}
		noteStop(ew, m, r)
	}
}
