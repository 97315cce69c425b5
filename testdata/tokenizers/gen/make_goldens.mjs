// Makes the goldens of one tokenizer folder with tokenizers.js
// (@huggingface/transformers, the reference JavaScript port of Hugging
// Face tokenizers and apply_chat_template, which renders with
// @huggingface/jinja). See ../README.md for the versions used.
//
//   node make_goldens.mjs <folder with tokenizer.json> <texts.json> <golden_ids.json>
//        [<conversations.json> <chat_golden.json> [<template.jinja>]]
//
// The folder holds the uncompressed tokenizer.json and tokenizer_config.json.
// A template file replaces tokenizer_config.json's chat_template (for files
// that ship without one).
import { AutoTokenizer, env } from "@huggingface/transformers";
import { createRequire } from "module";
import fs from "fs";
import path from "path";

const [dir, textsFile, out, convFile, chatOut, tplFile] = process.argv.slice(2);
env.allowRemoteModels = false;
env.localModelPath = path.dirname(path.resolve(dir)) + "/";
const tok = await AutoTokenizer.from_pretrained(path.basename(path.resolve(dir)));
// The package's exports hide package.json: read it next to the resolved entry point.
const entry = createRequire(import.meta.url).resolve("@huggingface/transformers");
const version = JSON.parse(fs.readFileSync(path.join(entry.slice(0, entry.lastIndexOf("/dist/")), "package.json"))).version;

// transformers rebuilds the post-processor from add_bos_token and
// add_eos_token (LlamaTokenizerFast.update_post_processor); tokenizers.js
// keeps tokenizer.json's. Where they differ its ids with special tokens
// are not transformers' when they add tokens, so those are left out.
const cfgPath = path.join(dir, "tokenizer_config.json");
const cfg = fs.existsSync(cfgPath) ? JSON.parse(fs.readFileSync(cfgPath)) : {};
const specialsDiffer = cfg.add_bos_token === false || cfg.add_eos_token === true;
const texts = JSON.parse(fs.readFileSync(textsFile));
const cases = texts.map((text) => {
  const ids = tok.encode(text, { add_special_tokens: false });
  const idsSpecial = tok.encode(text, { add_special_tokens: true });
  return {
    text,
    ids,
    ids_special: specialsDiffer && idsSpecial.length !== ids.length ? undefined : idsSpecial,
    tokens: tok.tokenize(text, { add_special_tokens: false }),
    decoded: ids.length ? tok.decode(ids, { skip_special_tokens: false }) : "", // decode refuses an empty list
  };
});
fs.writeFileSync(out, JSON.stringify({
  source: `@huggingface/transformers ${version} AutoTokenizer: encode add_special_tokens false/true, tokenize, decode skip_special_tokens false` +
    (specialsDiffer ? "; ids_special left out where tokenizers.js adds tokens: tokenizer_config.json sets add_bos_token false or add_eos_token true, which tokenizers.js ignores and transformers applies" : ""),
  cases,
}, null, 1) + "\n");

if (convFile) {
  const template = tplFile ? fs.readFileSync(tplFile, "utf8") : undefined;
  const convs = JSON.parse(fs.readFileSync(convFile));
  const chat = convs.map((c) => {
    const kw = c.kwargs || {};
    const row = { name: c.name, messages: c.messages, add_generation_prompt: !!c.add_generation_prompt };
    if (c.kwargs) row.kwargs = c.kwargs;
    try {
      const text = tok.apply_chat_template(c.messages, { tokenize: false, add_generation_prompt: row.add_generation_prompt, chat_template: template, ...kw });
      row.text = text;
      row.ids = tok.encode(text, { add_special_tokens: false });
    } catch (e) {
      row.error = String(e.message || e);
    }
    return row;
  });
  fs.writeFileSync(chatOut, JSON.stringify({
    source: `@huggingface/transformers ${version} apply_chat_template(tokenize false) with @huggingface/jinja; ids: encode add_special_tokens false` + (tplFile ? `; template ${path.basename(tplFile)}` : "; template from tokenizer_config.json"),
    cases: chat,
  }, null, 1) + "\n");
}
