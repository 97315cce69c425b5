"""Renders conversations.json with a family's chat template the way
transformers' apply_chat_template does (transformers/utils/chat_template_utils.py,
_compile_jinja_template and render_jinja_template): Python Jinja2's
ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks, loop
controls, its tojson filter (json.dumps, ensure_ascii False), raise_exception
and strftime_now, and the variables messages, tools (the case's "tools", or None),
documents=None, add_generation_prompt, the special tokens and the case's
kwargs.

    python3 make_chat_goldens.py <template: .jinja file or tokenizer_config.json> \
        <bos_token> <eos_token> <conversations.json> <chat_golden.json>

A template that raises gives a case with "error". Token ids are added
afterwards by add_chat_ids.mjs (tokenizers.js) for families whose
tokenizer is here.
"""
import json
import sys
from datetime import datetime

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


# The day strftime_now renders (transformers calls datetime.now()): pinned,
# so that a golden of a template writing today's date (Granite's) stays
# true after the day it was made; data/chat's goldenDay is the same day.
GOLDEN_DAY = datetime(2026, 12, 7, 12, 0, 0)


def strftime_now(fmt):
    return GOLDEN_DAY.strftime(fmt)


def main():
    tpl_file, bos, eos, conv_file, out = sys.argv[1:6]
    if tpl_file.endswith(".json"):
        source = json.load(open(tpl_file, encoding="utf-8"))["chat_template"]
    else:
        source = open(tpl_file, encoding="utf-8").read()
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    template = env.from_string(source)
    cases = []
    for c in json.load(open(conv_file, encoding="utf-8")):
        row = {"name": c["name"], "messages": c["messages"], "add_generation_prompt": bool(c.get("add_generation_prompt"))}
        if "tools" in c:
            row["tools"] = c["tools"]
        if "kwargs" in c:
            row["kwargs"] = c["kwargs"]
        try:
            row["text"] = template.render(messages=c["messages"], tools=c.get("tools"), documents=None,
                                          add_generation_prompt=row["add_generation_prompt"],
                                          bos_token=bos, eos_token=eos, **c.get("kwargs", {}))
        except (jinja2.exceptions.TemplateError, TypeError) as e:
            row["error"] = str(e)
        cases.append(row)
    golden = {
        "source": "Python Jinja2 %s configured as transformers' apply_chat_template (gen/make_chat_goldens.py)" % jinja2.__version__,
        "template": tpl_file.rsplit("/", 1)[-1],
        "bos_token": bos,
        "eos_token": eos,
        "cases": cases,
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
