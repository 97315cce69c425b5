package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/ftune/ftune"
	"github.com/ftune/ftune/internal/fsutil"
	"github.com/ftune/ftune/nn"
)

// generateFlags are generate's settings besides the GenerateOptions.
type generateFlags struct {
	modelName, adapter, prompt, system, tools string
	raw, think, noThink                       bool
	dev                                       deviceFlags
}

func newGenerateCmd() *cobra.Command {
	var (
		gf  generateFlags
		opt ftune.GenerateOptions
	)
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Generate text: one-shot, or an interactive chat when no prompt is given",
		Long: `Generate text with a base model, or base + adapter (the adapter's own base is
loaded: see --model).

--device and --precision are train's: by default (auto) the model runs on a
GPU when one is usable, in bf16 (weights, activations and KV cache;
--precision f32 for float32), else on the CPU; a line on stderr says
which, and why not the GPU.

With --prompt, one reply is printed as it is produced; --prompt - reads the
prompt from stdin, whole. Without --prompt, a chat starts; it keeps the
conversation, and when the next prompt would not leave room for --max-tokens
in the model's context it drops the oldest turns and says so. In the chat,
/reset forgets the conversation, /help lists the commands, and /exit, Ctrl-D
or Ctrl-C ends it, as does an empty line typed at a terminal. Piped into, the
chat answers each line (empty lines are skipped) until the input ends; the
replies go to stdout, one after another, and the "> " prompt and the notes
to stderr. A line that cannot be sent (not UTF-8, too long for the context,
an unknown /command) gets an empty line on stdout in place of its reply and
an error on stderr; the chat goes on, and exits 1 at the end naming the
lines not answered.

Sampling: without --temperature, the model folder's generation_config.json
decides, as it does for transformers' generate(): it samples when it sets
do_sample (Llama-3-Instruct: temperature 0.6, top_p 0.9), with its
temperature, top_k and top_p, and a line says so; otherwise the run is
greedy, the most likely token every time. --temperature 0 is greedy
whatever the folder says, and a greedy run takes no --top-k, --top-p or
--seed. Above 0 it samples. When sampling, a top_k that neither --top-k nor
generation_config.json gives is 50, transformers' default (--top-k 0: the
whole vocabulary); --top-p, --top-k and --min-p override the file's.
Sampling starts from seed 0 unless --seed says otherwise: the same command
gives the same text, and another --seed another draw.

--repetition-penalty and --stop apply to greedy runs and sampling alike,
and without them the file's repetition_penalty and stop_strings do (a line
says so). The penalty divides the logit of every token already in the
prompt or the reply (multiplies a negative one), as transformers does, before
the temperature, top-k, top-p and min-p; 1 is off. A reply ends when its
text comes to hold a --stop string (repeat the flag for several; they
replace the file's), and the text printed ends before it.

--raw encodes the prompt with the tokenizer's special tokens (a Llama or
Mistral tokenizer's BOS), as transformers' tokenizer(prompt) does and as
ftune trains on plain text; a chat prompt gets only what the template
writes.

Thinking models (Qwen3) write their reasoning in a <think> block before the
answer; it is shown as it comes, and the template leaves it out of the
history of later turns. --no-thinking passes enable_thinking=false to the
template (an answer without thinking), --thinking true; neither leaves the
template's default. A reply cut by --max-tokens while still thinking is said.`,
		Example: `  ftune generate --prompt "What is the capital of France?"
  ftune generate --adapter runs/<run>/adapter --prompt "Symbol of iron?"   # the folder "ftune train" printed
  ftune generate --system "Answer in one word." --prompt "Capital of Peru?"
  ftune generate --raw --prompt "It was a dark and stormy night" --temperature 0.8 --top-p 0.9
  ftune generate --raw --prompt "Symbol of iron? Answer:" --stop "." --stop $'\n' --repetition-penalty 1.2
  ftune generate --model ./Qwen3-0.6B --no-thinking --prompt "Capital of Peru?"
  ftune generate --prompt - < question.txt
  ftune generate --adapter runs/<run>/adapter --device cuda --precision f32   # on the GPU, in float32
  printf 'Symbol of iron?\nCapital of Peru?\n' | ftune generate   # one reply per line
  ftune generate            # interactive chat`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			if err := checkGenerateFlags(f, gf, &opt); err != nil {
				return err
			}
			// The sampling the folder asks for is settled before the
			// weights load: a --top-k for a greedy run is a usage error.
			gen, err := generationDefaults(gf.modelName, gf.adapter)
			if err != nil {
				return err
			}
			samplingNote, err := resolveSampling(f, &opt, gen)
			if err != nil {
				return err
			}
			ctx, in, w, ew := cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
			if gf.prompt == "-" {
				if isTerminal(in) {
					fmt.Fprintln(ew, "reading the prompt from stdin, up to Ctrl-D")
				}
				var err error
				if gf.prompt, err = readPrompt(ctx, in); err != nil {
					return err
				}
			}
			if gf.tools != "" {
				// Read before the weights load: a missing file is said at once.
				if opt.Tools, err = fsutil.ReadFileLimit(gf.tools, maxToolsBytes); err != nil {
					return usageError{fmt.Errorf("--tools: %w", err)}
				}
			}
			m, err := loadModel(cmd, gf.modelName, gf.adapter, gf.dev)
			if err != nil {
				return err
			}
			if err := m.CheckThinking(opt.Thinking); err != nil {
				return usageError{fmt.Errorf("%s: %w", thinkingFlag(gf), err)}
			}
			if err := m.CheckTools(ctx, opt.Tools); err != nil {
				return usageError{fmt.Errorf("--tools %s: %w", gf.tools, err)}
			}
			if samplingNote != "" {
				fmt.Fprintln(ew, samplingNote)
			}
			if !f.Changed("prompt") {
				if ctxLen := m.Net.Config.MaxPositions; opt.MaxNewTokens >= ctxLen {
					// A chat keeps room for --max-tokens after the
					// conversation: none would be left for it, and every
					// turn would drop all the earlier ones.
					return usageError{fmt.Errorf("--max-tokens %d: the model's context holds %d tokens, and a chat keeps room for --max-tokens in it besides the conversation; want at most %d (a smaller value keeps more history)", opt.MaxNewTokens, ctxLen, ctxLen-1)}
				}
				return chatLoop(ctx, m, chatIO{in: in, interactive: isTerminal(in), out: w, log: ew}, gf.system, opt)
			}
			var written bool
			opt.OnText = streamTo(w, &written)
			var r ftune.Reply
			if gf.raw {
				r, err = m.Generate(ctx, gf.prompt, opt)
			} else {
				r, err = m.NewConversation(gf.system).Send(ctx, gf.prompt, opt)
			}
			if err == nil || written {
				fmt.Fprintln(w) // ends the reply's line; nothing when no reply began
			}
			if err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("generate: interrupted after %d tokens: %w", r.Tokens, ctx.Err())
				}
				return err
			}
			noteStop(ew, m, r)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&gf.modelName, "model", "", modelFlagHelp)
	f.StringVar(&gf.adapter, "adapter", "", "PEFT LoRA adapter folder to apply")
	addDeviceFlags(f, &gf.dev)
	f.StringVarP(&gf.prompt, "prompt", "p", "", `prompt; "-" reads it from stdin (omit for a chat)`)
	f.StringVar(&gf.system, "system", "", "system message for the chat")
	f.BoolVar(&gf.raw, "raw", false, "continue the --prompt as plain text instead of a chat turn")
	f.IntVar(&opt.MaxNewTokens, "max-tokens", 64, "maximum new tokens per reply (in a chat, below the model's context); --max-new-tokens, the config key's and transformers' name, is the same flag")
	f.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if name == "max-new-tokens" {
			name = "max-tokens"
		}
		return pflag.NormalizedName(name)
	})
	f.Float64Var(&opt.Temperature, "temperature", 0, "sampling temperature; 0 = greedy: the most likely token, no sampling (default: the model folder's generation_config.json, greedy unless it sets do_sample)")
	f.IntVar(&opt.TopK, "top-k", 0, "when sampling: sample from the k most likely tokens, and those tied with the k-th; 0: the whole vocabulary (default: generation_config.json's top_k, else 50 as in transformers)")
	f.Float64Var(&opt.TopP, "top-p", 0, "when sampling: sample from the smallest set of tokens whose probability reaches p, 0 < p ≤ 1 (default: generation_config.json's top_p, else off)")
	f.Float64Var(&opt.MinP, "min-p", 0, "when sampling: drop the tokens whose probability is below p times the most likely token's, after --top-k and --top-p, 0 ≤ p ≤ 1 (default: generation_config.json's min_p, else 0, off)")
	f.Float64Var(&opt.RepetitionPenalty, "repetition-penalty", 0, "divide the logit of every token already in the prompt or the reply by this (multiply a negative one), as transformers' repetition_penalty; above 1 discourages repeats, 1 is off; greedy runs too (default: generation_config.json's repetition_penalty, else 1, off)")
	f.StringArrayVar(&opt.StopStrings, "stop", nil, "end the reply when its text holds this string, which is left out of it; repeat for several (default: generation_config.json's stop_strings)")
	f.Uint64Var(&opt.Seed, "seed", 0, "when sampling: sampling seed (the default 0 too gives the same text on every run)")
	f.BoolVar(&gf.think, "thinking", false, "pass enable_thinking=true to the chat template (thinking models such as Qwen3)")
	f.BoolVar(&gf.noThink, "no-thinking", false, "pass enable_thinking=false to the chat template: answer without a <think> block")
	f.StringVar(&gf.tools, "tools", "", "JSON file listing the functions the model may call ([{\"type\": \"function\", \"function\": {...}}], as a training record's \"tools\"), shown to it by the chat template; the reply holds its calls as the template writes them")
	return cmd
}

// maxToolsBytes bounds the --tools file, read whole.
const maxToolsBytes = 16 << 20

// checkGenerateFlags refuses, before any model is loaded, flags that
// contradict each other or would be ignored; it sets opt.Thinking.
func checkGenerateFlags(f *pflag.FlagSet, gf generateFlags, opt *ftune.GenerateOptions) error {
	usage := func(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }
	if err := gf.dev.check(); err != nil {
		return err
	}
	hasPrompt := f.Changed("prompt")
	switch {
	case hasPrompt && gf.prompt == "":
		return usage(`--prompt is empty: give the prompt, "-" to read it from stdin, or leave --prompt out for a chat`)
	case gf.raw && !hasPrompt:
		return usage("--raw continues a --prompt as plain text, and the chat (no --prompt) uses the chat template: give --prompt (- reads stdin)")
	case gf.raw && gf.system != "":
		return usage("--system applies to chat turns; it cannot be used with --raw")
	case gf.think && gf.noThink:
		return usage("--thinking and --no-thinking contradict each other: give one")
	case (gf.think || gf.noThink) && gf.raw:
		return usage("--thinking and --no-thinking set the chat template's enable_thinking; --raw uses no template")
	case gf.tools != "" && gf.raw:
		return usage("--tools are shown to the model by the chat template; --raw uses no template")
	case opt.MaxNewTokens < 1:
		return usage("--max-tokens %d: want at least 1", opt.MaxNewTokens)
	case !(opt.Temperature >= 0) || math.IsInf(opt.Temperature, 0):
		return usage("--temperature %g: want a finite value ≥ 0 (0 = greedy)", opt.Temperature)
	case opt.TopK < 0:
		return usage("--top-k %d: want 0 (all tokens) or more", opt.TopK)
	case f.Changed("top-p") && !(opt.TopP > 0 && opt.TopP <= 1):
		return usage("--top-p %g: want 0 < p ≤ 1 (leave it out for no nucleus filter)", opt.TopP)
	case !(opt.MinP >= 0 && opt.MinP <= 1):
		return usage("--min-p %g: want 0 ≤ p ≤ 1 (0: off)", opt.MinP)
	case f.Changed("repetition-penalty") && (!(opt.RepetitionPenalty > 0) || math.IsInf(opt.RepetitionPenalty, 0)):
		return usage("--repetition-penalty %g: want a finite value > 0 (1: off; above 1 discourages repeats)", opt.RepetitionPenalty)
	}
	for _, s := range opt.StopStrings {
		if s == "" {
			return usage("--stop is empty: it would end every reply before its first token; give the text to stop at")
		}
		if at := invalidUTF8(s); at >= 0 {
			return usage("--stop %q: byte %d is not valid UTF-8", s, at+1)
		}
	}
	if f.Changed("temperature") && opt.Temperature == 0 {
		if err := refuseGreedySampling(f, "--temperature 0"); err != nil {
			return err
		}
	}
	for _, s := range []struct{ flag, text string }{{"--prompt", gf.prompt}, {"--system", gf.system}} {
		if at := invalidUTF8(s.text); at >= 0 {
			return usage("%s: byte %d is not valid UTF-8", s.flag, at+1)
		}
	}
	if gf.think || gf.noThink {
		opt.Thinking = &gf.think
	}
	return nil
}

// refuseGreedySampling refuses --top-k, --top-p and --seed for a greedy
// run (greedy says why it is): they would be ignored, two seeds giving the
// same text.
func refuseGreedySampling(f *pflag.FlagSet, greedy string) error {
	var given []string
	for _, name := range []string{"top-k", "top-p", "min-p", "seed"} {
		if f.Changed(name) {
			given = append(given, "--"+name)
		}
	}
	if len(given) == 0 {
		return nil
	}
	verb := "shape"
	if len(given) == 1 {
		verb = "shapes"
	}
	return usageError{fmt.Errorf("%s %s sampling, and %s is greedy, the most likely token every time: set --temperature above 0, e.g. --temperature 0.8", strings.Join(given, ", "), verb, greedy)}
}

// validOptions is the library's own check, for any rule added there and
// not here.
func validOptions(opt ftune.GenerateOptions) error {
	if err := opt.Validate(); err != nil {
		return usageError{err}
	}
	return nil
}

// generationDefaults reads the generation_config.json of the folder
// generate will load, without its weights. A folder that cannot be found
// gives none: loading it then says why. A malformed file is its error.
func generationDefaults(model, adapter string) (nn.GenerationDefaults, error) {
	dir, cfg, err := modelConfig(model, adapter)
	if err != nil {
		return nn.GenerationDefaults{}, nil // the load names it
	}
	return nn.LoadGenerationDefaults(dir, cfg.VocabSize)
}

// resolveSampling completes opt's decoding as transformers' generate()
// would with the folder's generation_config.json g: without --temperature
// the folder's do_sample decides and its temperature, top_k, top_p and
// min_p apply; when sampling, a top_k, top_p or min_p no flag gives comes
// from g, and a top_k g lacks too is 50 (nn.DefaultTopK). Greedy or not, a
// repetition penalty or stop strings no flag gives come from g. It refuses
// sampling flags for a greedy run, checks the result
// (GenerateOptions.Validate) and returns the note that says what was
// chosen for the user ("" when nothing was).
func resolveSampling(f *pflag.FlagSet, opt *ftune.GenerateOptions, g nn.GenerationDefaults) (string, error) {
	def, folderSamples := g.Sampling()
	// The file's settings that apply whatever the decoding, for the note.
	var always, hints []string
	if !f.Changed("repetition-penalty") && def.RepetitionPenalty != 0 {
		opt.RepetitionPenalty = def.RepetitionPenalty
		always = append(always, fmt.Sprintf("repetition_penalty %g", opt.RepetitionPenalty))
		hints = append(hints, "--repetition-penalty 1 for none")
	}
	if !f.Changed("stop") && len(g.StopStrings) > 0 {
		opt.StopStrings = g.StopStrings
		always = append(always, fmt.Sprintf("stop_strings %q", opt.StopStrings))
		hints = append(hints, "--stop replaces them")
	}
	fromFolder := !f.Changed("temperature") && folderSamples
	if fromFolder {
		opt.Temperature = def.Temperature
	}
	if opt.Temperature == 0 {
		if !f.Changed("temperature") {
			why := "the model folder has no generation_config.json"
			if g.Path != "" {
				why = g.Path + " sets no do_sample"
			}
			if err := refuseGreedySampling(f, "--temperature 0 (the default, as "+why+")"); err != nil {
				return "", err
			}
		}
		if err := validOptions(*opt); err != nil || len(always) == 0 {
			return "", err
		}
		return fmt.Sprintf("note: greedy, with %s's %s (%s)", g.Path, strings.Join(always, ", "), strings.Join(hints, "; ")), nil
	}
	// Each setting with where it came from, for the note.
	var set []string
	if fromFolder {
		set = append(set, fmt.Sprintf("temperature %g", opt.Temperature))
	}
	if !f.Changed("top-k") {
		switch {
		case g.TopK != nil:
			opt.TopK = *g.TopK
			set = append(set, fmt.Sprintf("top_k %d", opt.TopK))
		default:
			opt.TopK = nn.DefaultTopK
		}
	}
	if !f.Changed("top-p") && g.TopP != nil && *g.TopP < 1 {
		opt.TopP = *g.TopP
		set = append(set, fmt.Sprintf("top_p %g", opt.TopP))
	}
	if !f.Changed("min-p") && g.MinP != nil && *g.MinP > 0 {
		opt.MinP = *g.MinP
		set = append(set, fmt.Sprintf("min_p %g", opt.MinP))
	}
	set = append(set, always...)
	if err := validOptions(*opt); err != nil {
		return "", err
	}
	var note []string
	switch {
	case fromFolder:
		note = append(note, fmt.Sprintf("sampling as %s says: %s", g.Path, strings.Join(set, ", ")))
	case len(set) > 0:
		note = append(note, fmt.Sprintf("sampling with --temperature %g and %s's %s", opt.Temperature, g.Path, strings.Join(set, ", ")))
	default:
		note = append(note, fmt.Sprintf("sampling with --temperature %g", opt.Temperature))
	}
	if !f.Changed("top-k") && g.TopK == nil {
		note = append(note, fmt.Sprintf("top_k %d as in transformers (--top-k 0: the whole vocabulary)", nn.DefaultTopK))
	}
	if !f.Changed("seed") {
		note = append(note, fmt.Sprintf("from seed %d, the default: the same command gives the same text; --seed N draws another", opt.Seed))
	}
	if fromFolder {
		note = append(note, "--temperature 0 for greedy")
	}
	note = append(note, hints...)
	return "note: " + strings.Join(note, "; "), nil
}

func thinkingFlag(gf generateFlags) string {
	if gf.noThink {
		return "--no-thinking"
	}
	return "--thinking"
}

// maxPromptBytes bounds --prompt - and a chat line: far more than any
// model's context holds.
const maxPromptBytes = 16 << 20

// readPrompt reads the whole of in, for --prompt -, without its final
// line ends (as the shell's $(...) drops them). Ctrl-C stops the wait.
func readPrompt(ctx context.Context, in io.Reader) (string, error) {
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() { // blocked in Read until in ends; ctx cannot stop a Read
		b, err := io.ReadAll(io.LimitReader(in, maxPromptBytes+1))
		done <- result{b, err}
	}()
	var res result
	select {
	case <-ctx.Done():
		return "", fmt.Errorf("--prompt -: interrupted while reading stdin: %w", ctx.Err())
	case res = <-done:
	}
	switch {
	case res.err != nil:
		return "", fmt.Errorf("--prompt -: read stdin: %w", res.err)
	case len(res.b) > maxPromptBytes:
		return "", usageError{fmt.Errorf("--prompt -: stdin holds more than %d MiB", maxPromptBytes>>20)}
	}
	s := strings.TrimRight(string(res.b), "\r\n")
	if s == "" {
		return "", usageError{errors.New("--prompt -: stdin is empty")}
	}
	if at := invalidUTF8(s); at >= 0 {
		return "", usageError{fmt.Errorf("--prompt - (stdin): byte %d is not valid UTF-8", at+1)}
	}
	return s, nil
}

// invalidUTF8 is the offset of the first byte of s that is not part of
// valid UTF-8, or -1 when s is valid.
func invalidUTF8(s string) int {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1
}

// isTerminal reports whether in is a terminal (someone typing) rather
// than a pipe or a file.
func isTerminal(in io.Reader) bool {
	f, ok := in.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
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

const chatHelp = `commands: /reset forgets the conversation, /help shows this, /exit (or Ctrl-D, or an empty line at a terminal) ends the chat`

// chatIO is where a chat reads and writes.
type chatIO struct {
	in io.Reader
	// interactive: in is a terminal, where an empty line ends the chat;
	// from a pipe or a file, empty lines are skipped and the end ends it.
	interactive bool
	out         io.Writer // the replies, and nothing else
	log         io.Writer // the "> " prompt, command output, notes, errors
}

// streamTo is an OnText that writes the reply to w and notes that it did.
func streamTo(w io.Writer, written *bool) func(string) error {
	return func(s string) error {
		*written = true
		_, err := io.WriteString(w, s)
		return err
	}
}

// inputLine is a line of the chat's input, or its end (eof, with the
// reader's error if any).
type inputLine struct {
	text string
	eof  bool
	err  error
}

// readLines sends in's lines on the channel it returns, then its end. It
// reads in a goroutine so that the chat can wait for a line and for
// Ctrl-C at once; after done closes it sends nothing more (a Read already
// blocked stays so until in ends, as no Read can be cancelled).
func readLines(in io.Reader, done <-chan struct{}) <-chan inputLine {
	lines := make(chan inputLine)
	go func() {
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64<<10), maxPromptBytes)
		for sc.Scan() {
			select {
			case lines <- inputLine{text: sc.Text()}:
			case <-done:
				return
			}
		}
		select {
		case lines <- inputLine{eof: true, err: sc.Err()}:
		case <-done:
		}
	}()
	return lines
}

// chatLoop runs the chat until /exit, the input's end (nil), an error, or
// Ctrl-C (ctx cancelled: an error wrapping context.Canceled, so the exit
// status is 130, as for a one-shot reply stopped by Ctrl-C).
//
// A line that cannot be sent (not UTF-8, too long for the context, an
// unknown command) is said on c.log, and the chat goes on. Piped into, it
// also has an empty line on c.out in place of its reply, so that a
// script's k-th prompt keeps the k-th reply line (when replies are one
// line each), and the chat, at its end, fails naming the lines not
// answered: a batch that lost answers is not a success. The chat goes on
// rather than stopping at the first such line because the other prompts'
// replies cost as much to make again, and the error names every line to
// fix.
func chatLoop(ctx context.Context, m *ftune.Model, c chatIO, system string, opt ftune.GenerateOptions) error {
	conv := m.NewConversation(system)
	ctxLen := m.Net.Config.MaxPositions
	fmt.Fprintf(c.log, "chat with %s (context %d tokens); %s\n", m.Dir, ctxLen, chatHelp)
	done := make(chan struct{})
	defer close(done)
	lines := readLines(c.in, done)
	var written bool
	opt.OnText = streamTo(c.out, &written)
	var b batchLines
	// fail says line n was not sent: "error: input line n" then what.
	fail := func(n int, what string) {
		fmt.Fprintf(c.log, "error: input line %d%s\n", n, what)
		if !c.interactive {
			b.failed = append(b.failed, n)
			fmt.Fprintln(c.out) // the failed line's reply: empty
		}
	}
	end := func() error {
		if c.interactive {
			return nil
		}
		return b.err()
	}
	for n := 1; ; n++ {
		if ctx.Err() != nil { // a select below with a line ready too may pick either
			return fmt.Errorf("chat: interrupted: %w", ctx.Err())
		}
		fmt.Fprint(c.log, "> ")
		var l inputLine
		select {
		case <-ctx.Done(): // main's signal handler has begun a new line
			return fmt.Errorf("chat: interrupted: %w", ctx.Err())
		case l = <-lines:
		}
		if l.eof {
			fmt.Fprintln(c.log)
			if l.err != nil {
				return fmt.Errorf("chat: input line %d: %w", n, l.err)
			}
			return end()
		}
		if at := invalidUTF8(l.text); at >= 0 {
			b.prompts++
			fail(n, fmt.Sprintf(", byte %d: not valid UTF-8; the line was not sent", at+1))
			continue
		}
		line := strings.TrimSpace(l.text)
		switch {
		case line == "" && !c.interactive:
			continue
		case line == "" || line == "/exit" || line == "/quit":
			return end()
		case line == "/reset":
			conv.Reset()
			fmt.Fprintln(c.log, "(conversation cleared)")
			continue
		case line == "/help":
			fmt.Fprintln(c.log, chatHelp)
			continue
		case strings.HasPrefix(line, "/"):
			b.prompts++
			fail(n, fmt.Sprintf(": unknown command %s (a line that starts with / is a command; it was not sent); %s", strings.Fields(line)[0], chatHelp))
			continue
		}
		b.prompts++
		written = false
		r, err := conv.Send(ctx, line, opt)
		if err == nil || written {
			fmt.Fprintln(c.out)
		}
		if err != nil && ctx.Err() != nil {
			return fmt.Errorf("chat: interrupted: %w", ctx.Err())
		}
		if errors.Is(err, ftune.ErrContextFull) {
			fail(n, ": "+err.Error()) // the message was not kept; the chat goes on
			continue
		}
		if err != nil {
			return err
		}
		if r.DroppedTurns > 0 {
			fmt.Fprintf(c.log, "note: dropped the %d oldest messages so that the conversation leaves room for --max-tokens %d in the model's context (%d tokens)\n", r.DroppedTurns, opt.MaxNewTokens, ctxLen)
		}
		noteStop(c.log, m, r)
	}
}

// batchLines counts a piped chat's prompts (the lines that are not empty
// and not a command it knows) and those it could not answer.
type batchLines struct {
	prompts int
	failed  []int // their line numbers
}

// err is the chat's error for the lines not answered, nil when every
// prompt was.
func (b batchLines) err() error {
	if len(b.failed) == 0 {
		return nil
	}
	const shown = 10
	nums := make([]string, 0, shown+1)
	for i, n := range b.failed {
		if i == shown {
			nums = append(nums, "…")
			break
		}
		nums = append(nums, strconv.Itoa(n))
	}
	which := "line " + nums[0]
	if len(b.failed) > 1 {
		which = "lines " + strings.Join(nums, ", ")
	}
	return fmt.Errorf("chat: %d of %d input lines were not answered (%s): each has an empty line on stdout in place of its reply, and its error above", len(b.failed), b.prompts, which)
}
