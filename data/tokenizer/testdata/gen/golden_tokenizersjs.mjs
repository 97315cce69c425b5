import { Tokenizer } from "@huggingface/tokenizers";
import fs from "fs";
const [dir, textsFile, out] = process.argv.slice(2);
const tj = JSON.parse(fs.readFileSync(dir + "/tokenizer.json"));
const tc = fs.existsSync(dir + "/tokenizer_config.json") ? JSON.parse(fs.readFileSync(dir + "/tokenizer_config.json")) : {};
const tok = new Tokenizer(tj, tc);
const texts = JSON.parse(fs.readFileSync(textsFile));
const cases = texts.map((text) => {
  const e = tok.encode(text, { add_special_tokens: false });
  const s = tok.encode(text, { add_special_tokens: true });
  return { text, ids: e.ids, ids_special: s.ids, tokens: e.tokens, decoded: e.ids.length ? tok.decode(e.ids, { skip_special_tokens: false }) : "" };
});
fs.writeFileSync(out, JSON.stringify({ source: "@huggingface/tokenizers (tokenizers.js) 0.2.0: encode add_special_tokens false/true, decode skip_special_tokens false; no offsets", cases }, null, 1) + "\n");
