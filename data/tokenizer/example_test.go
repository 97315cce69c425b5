package tokenizer_test

import (
	"fmt"
	"log"

	"github.com/ftune/ftune/data/tokenizer"
)

func ExampleLoad() {
	tok, err := tokenizer.Load("testdata/tiny-base")
	if err != nil {
		log.Fatal(err)
	}
	enc, err := tok.Encode("<|im_start|>user\nWhat is the capital of France?", false)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(enc.IDs)
	fmt.Println(enc.Tokens[:4], enc.Offsets[:4])
	text, _ := tok.Decode(enc.IDs, true)
	fmt.Printf("%q\n", text)
	// Output:
	// [1 427 268 202 2270 336 263 1893 273 2540 34]
	// [<|im_start|> us er Ċ] [[0 12] [12 14] [14 16] [16 17]]
	// "user\nWhat is the capital of France?"
}

func ExampleTokenizer_NewStreamDecoder() {
	tok, err := tokenizer.Load("testdata/tiny-base")
	if err != nil {
		log.Fatal(err)
	}
	enc, _ := tok.Encode("ok 😀!", false)
	d := tok.NewStreamDecoder(true)
	for _, id := range enc.IDs {
		piece, _ := d.Next(id)
		fmt.Printf("%q ", piece) // the emoji's first three byte tokens emit nothing
	}
	fmt.Println()
	// Output:
	// "ok" " " "" "" "" "😀" "!"
}

func ExampleTiktoken() {
	tok, err := tokenizer.Tiktoken("cl100k_base")
	if err != nil {
		log.Fatal(err)
	}
	enc, _ := tok.Encode("Hello world<|endoftext|>", false)
	fmt.Println(enc.IDs, enc.Tokens)
	// Output:
	// [9906 1917 100257] [Hello Ġworld <|endoftext|>]
}
