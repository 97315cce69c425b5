// Package ftune is the API that programs embedding ftune use, and that the
// ftune command wraps: one call per task over the packages below it.
//
//   - Load a base model (a Hugging Face folder, or the embedded
//     "tiny-base"), optionally with a PEFT LoRA adapter. An adapter
//     records the base it was trained on (lora.BaseFile: name, path and a
//     content hash); Load finds that base, or refuses with the reason.
//   - Generate text from a prompt, or Chat: a Conversation keeps the turns,
//     drops the oldest when the model's context would overflow (and says
//     so in the Reply), and streams each reply through a callback in whole
//     characters.
//   - Train from a run configuration (the YAML schema `ftune init` writes,
//     package config), or FineTune from examples held in memory:
//     conversations, or plain texts learnt whole (continued pretraining on
//     documents, cut into pieces of data.max_length tokens); preferences
//     (FineTunePreferences, DPO) or thumbs-up/down feedback
//     (FineTuneFeedback, KTO).
//   - Evaluate a base, or base + adapter, on subject datasets.
//   - Export a loaded adapter: a PEFT folder, a merged Hugging Face folder,
//     a GGUF model or a GGUF LoRA. Exports refuse NaN or Inf weights and
//     never delete a folder ftune did not write.
//
// The smallest complete program:
//
//	m, err := ftune.Load("tiny-base", ftune.LoadOptions{})
//	if err != nil { ... }
//	reply, err := m.Chat(ctx, []ftune.Message{{Role: "user", Content: "Symbol of iron?"}}, ftune.GenerateOptions{})
//	fmt.Println(reply.Text)
//
// A program that only loads and generates links neither the training
// report (plots, PDF) nor the parquet reader (TestGenerateOnlyDeps).
package ftune
