// Adds to each rendered case of a chat_golden.json the token ids of its
// text from tokenizers.js (@huggingface/transformers AutoTokenizer, encode
// with add_special_tokens false, as apply_chat_template tokenizes).
//
//   node add_chat_ids.mjs <folder with tokenizer.json> <chat_golden.json>
import { AutoTokenizer, env } from "@huggingface/transformers";
import { createRequire } from "module";
import fs from "fs";
import path from "path";

const [dir, file] = process.argv.slice(2);
env.allowRemoteModels = false;
env.localModelPath = path.dirname(path.resolve(dir)) + "/";
const tok = await AutoTokenizer.from_pretrained(path.basename(path.resolve(dir)));
const entry = createRequire(import.meta.url).resolve("@huggingface/transformers");
const version = JSON.parse(fs.readFileSync(path.join(entry.slice(0, entry.lastIndexOf("/dist/")), "package.json"))).version;
const golden = JSON.parse(fs.readFileSync(file));
for (const c of golden.cases) {
  if (c.text !== undefined) c.ids = tok.encode(c.text, { add_special_tokens: false });
}
golden.source += `; ids: @huggingface/transformers ${version} encode add_special_tokens false`;
fs.writeFileSync(file, JSON.stringify(golden, null, 1) + "\n");
