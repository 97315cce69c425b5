package tokenizer

import (
	"errors"
	"fmt"
	"time"
)

// Bounds on the work of one Encode or Decode call.
//
// tokenizer.json comes with a downloaded model and is untrusted: a few
// kilobytes of it can ask for unbounded work. A Sequence of 24 normalizers
// each replacing "a" with "aa" turns one character into 16,777,216; a
// Replace of every empty match by 100 KB turns a prompt into gigabytes; a
// Split pattern with nested quantifiers backtracks for minutes on a short
// line. Each call therefore carries a budget: text may grow by a bounded
// factor at each normalizer and decoder, and the regexes that run on
// regexp2 (patterns without a scanner in fastsplit.go) share one time
// budget proportional to the call's input. Past either bound the call
// fails with an error wrapping ErrLimit that names the component of
// tokenizer.json. The bounds sit far above what real tokenizers do, so
// no real tokenizer meets them on any text.

// ErrLimit is wrapped by the errors of an Encode or Decode call that
// tokenizer.json made exceed a bound on its work: a normalizer or decoder
// that grows text past maxGrowth, or regexes that run past their time
// budget. The message names the component.
var ErrLimit = errors.New("exceeds a bound on the work of a tokenizer")

// maxGrowth and growthSlack bound text growth: a normalizer (after each
// stage of a Sequence) may make n bytes of text at most maxGrowth*n +
// growthSlack bytes, n being the text given to the normalizer as a whole
// (the text between two added tokens); a decoder likewise for the total
// length of the tokens it is given. Real
// normalizers grow text by small constant factors: NFKC at most 11 times
// (U+FDFA, 3 bytes, becomes 18 characters, 33 bytes), Replace " " by "▁"
// 3 times, BertNormalizer's padding of CJK characters 5/3, Prepend "▁"
// by 3 bytes (6 bytes for a text of one space followed by Replace " " by
// "▁"). Real decoders shrink text ("▁" to " ", "<0x41>" to "A"), but for
// WordPiece's space before each word (at most 2 times) and ByteLevel's
// U+FFFD for a stray byte (1.5 times). Because the bound is on the output
// of every stage against the input of the whole Sequence, chained stages
// cannot compound: 24 doublings of a text of one byte fail at the seventh
// (128 bytes, over 80).
const (
	maxGrowth   = 16
	growthSlack = 64
)

// growthLimit is the most bytes a normalizer or decoder may make of n.
func growthLimit(n int) int { return maxGrowth*n + growthSlack }

// regexFloor and regexPerByte bound the time that patterns run on regexp2
// may take, all searches of one call together: regexFloor plus
// regexPerByte per byte of the call's input. regexp2 counts no steps we
// could budget instead, so the budget is time, and only the time inside
// the searches counts (not the model's or a normalizer's between them).
// The patterns of real tokenizers are linear in the text; on regexp2
// (o200k's, DeepSeek-V3's, Whitespace's \w+|[^\w\s]+, and GPT-2's,
// cl100k's and Qwen's where the scanners do not apply) they take at most
// about 2 µs a byte, on prose or on long runs of spaces, newlines,
// digits, emoji, one letter or CJK, and about 25 µs under the race
// detector (on digits that Qwen's pattern matches one by one). 50 µs a
// byte is 25 times the first and twice the second, margins that also
// absorb a loaded machine stretching the wall-clock time; the floor's
// second is the per-byte budget of 20 KB, for short texts. A pattern with
// catastrophic backtracking, such as ([a-z ]+)+[0-9]|. on lowercase prose,
// then fails after about a second on a line (it took 6 to 16 s on 275
// bytes with a 10 s timeout on each search only) and after 50 µs a byte
// on long text.
const (
	regexFloor   = time.Second
	regexPerByte = 50 * time.Microsecond
)

// budget is what is left to one Encode or Decode call. It is not shared
// between calls (or goroutines).
type budget struct {
	in        int           // bytes of text the call was given
	regex     time.Duration // the regexp2 time the call was given
	regexLeft time.Duration
	// grownFrom is the length of the text given to the normalizer (or
	// decoder) that is running: its stages may make at most
	// growthLimit(grownFrom) bytes of it.
	grownFrom int
}

func newBudget(in int) *budget {
	d := regexFloor + time.Duration(in)*regexPerByte
	return &budget{in: in, regex: d, regexLeft: d, grownFrom: in}
}

// checkGrowth returns an error naming who when out bytes of text are more
// than the budget lets the running normalizer or decoder make.
func (b *budget) checkGrowth(who string, out int) error {
	if lim := growthLimit(b.grownFrom); out > lim {
		return fmt.Errorf("%s: would grow the text from %d to %d bytes, more than the %d allowed (%d times the input plus %d bytes): %w",
			who, b.grownFrom, out, lim, maxGrowth, growthSlack, ErrLimit)
	}
	return nil
}
