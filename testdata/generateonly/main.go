// Command generateonly is the smallest program that embeds ftune to
// generate text: TestGenerateOnlyDeps checks what it links.
package main

import (
	"context"
	"fmt"
	"log"

	"github.com/ftune/ftune"
)

func main() {
	m, err := ftune.Load(ftune.TinyBase, ftune.LoadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	r, err := m.Chat(context.Background(), []ftune.Message{{Role: "user", Content: "Symbol of iron?"}}, ftune.GenerateOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.Text)
}
