"""DPO tokenization goldens: preference records tokenised as TRL's DPOTrainer
tokenises them (huggingface/trl f2cd577, trl/trainer/dpo_trainer.py,
_prepare_dataset's add_eos and tokenize_fn, re-typed: TRL needs the datasets
library, absent where this runs), with Hugging Face's tokenizers and
transformers' apply_chat_template:

- conversational: prompt_ids = apply_chat_template(prompt,
  add_generation_prompt=True, tokenize=True); a completion's ids are
  apply_chat_template(prompt + completion, tokenize=True) past as many
  tokens as the prompt has;
The tokenizer is the family's tokenizer.json in Hugging Face's tokenizers
library with the config's BOS and EOS (as scripts/check_tokenizer_goldens.py
loads it). Phi-3's text cases are left out: its config sets add_bos_token
false, which transformers 4's Llama fast tokenizer (and ftune,
data/tokenizer's applyAddSpecial) apply by rebuilding the template, and
neither this plain tokenizer nor transformers 5.12's AutoTokenizer does
(both add BOS); with this derived tokenizer.json (made from llama.cpp's
GGUF vocabulary, see ../README.md) transformers 5's LlamaTokenizer class also
re-tokenises conversations differently from the file, so it is no
reference for it.

- text: the completion gets the tokenizer's eos_token appended when it does
  not end with it; prompt_ids = tokenizer(prompt) (special tokens added, as
  tokenizer(text) does by default); a completion's ids are
  tokenizer(prompt + completion) past as many tokens as the prompt has.

Writes testdata/tokenizers/<family>/dpo_golden.json for the families below
(recipe's TestDPOTokenizationMatchesTRL reads them).

    python3 testdata/tokenizers/gen/make_dpo_goldens.py   # from the repository root, in scripts/hf-root.sh
"""
import json, os, sys

from tokenizers import Tokenizer
import tokenizers, transformers
from transformers import PreTrainedTokenizerFast

# read() and tokenizer_folder(): the golden folders' files, as the golden check reads them
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "scripts"))
from check_tokenizer_goldens import read, tokenizer_folder

FAMILIES = ["qwen3", "gemma3", "phi3", "mistral"]
NO_TEXT = {"phi3"}  # see above

def token(v):
    return v["content"] if isinstance(v, dict) else v

U = lambda c: {"role": "user", "content": c}
A = lambda c: {"role": "assistant", "content": c}
S = lambda c: {"role": "system", "content": c}
CONVERSATIONS = [
    ([U("What is the capital of Peru?")], [A("Lima.")], [A("Cusco, I think.")]),
    ([S("Answer in one word."), U("Largest planet?")], [A("Jupiter")], [A("Saturn")]),
    ([U("Hi"), A("Hello! How can I help?"), U("Name a prime number above 10.")], [A("11")], [A("12 is prime.")]),
    ([U("Translate 'chat' from French.")], [A("cat")], [A("  chat (it is already English)\n")]),
    ([U("Sum 2+2 — et en français ?")], [A("4, quatre.")], [A("5, cinq.")]),
]
TEXTS = [
    ("The capital of Peru is", " Lima.", " Cusco."),
    ("Q: 2 + 2 =\nA:", " 4", " 22"),
    ("Ein Satz über Äpfel:", " Äpfel sind rot.", " Apfel ist blau"),
]

def main():
    print("tokenizers", tokenizers.__version__, "transformers", transformers.__version__)
    for fam in FAMILIES:
        folder = os.path.join("testdata/tokenizers", fam)
        tf = tokenizer_folder(folder)
        cfg = json.loads(read(folder, "tokenizer_config.json") or read(tf, "tokenizer_config.json"))
        template = read(folder, "chat_template.jinja") or cfg.get("chat_template")
        tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(read(tf, "tokenizer.json")),
                                      bos_token=token(cfg.get("bos_token")), eos_token=token(cfg.get("eos_token")))
        cases = []
        if template:
            for prompt, chosen, rejected in CONVERSATIONS:
                ids = lambda msgs, gen=False: tok.apply_chat_template(msgs, chat_template=template, tokenize=True,
                                                                      return_dict=True, add_generation_prompt=gen)["input_ids"]
                p = ids(prompt, True)
                cases.append({"prompt": prompt, "chosen": chosen, "rejected": rejected, "prompt_ids": p,
                              "chosen_ids": ids(prompt + chosen)[len(p):], "rejected_ids": ids(prompt + rejected)[len(p):]})
        eos = tok.eos_token
        for prompt, chosen, rejected in ([] if fam in NO_TEXT else TEXTS):
            p = tok(prompt)["input_ids"]
            c = chosen if chosen.endswith(eos) else chosen + eos
            r = rejected if rejected.endswith(eos) else rejected + eos
            cases.append({"prompt": prompt, "chosen": chosen, "rejected": rejected, "prompt_ids": p,
                          "chosen_ids": tok(prompt + c)["input_ids"][len(p):], "rejected_ids": tok(prompt + r)["input_ids"][len(p):]})
        out = {"source": "make_dpo_goldens.py: TRL f2cd577's DPO tokenisation, transformers %s, tokenizers %s" % (transformers.__version__, tokenizers.__version__),
               "eos_token": eos, "cases": cases}
        with open(os.path.join(folder, "dpo_golden.json"), "w") as f:
            json.dump(out, f, indent=1, ensure_ascii=False)
            f.write("\n")
        print(fam, len(cases), "cases, eos", repr(eos))

if __name__ == "__main__":
    main()
