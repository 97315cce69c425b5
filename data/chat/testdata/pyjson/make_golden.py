"""Writes golden.json for data/chat's TestPythonJSON and TestPythonSubscripts:
what Python's json.dumps (transformers' tojson filter) writes of JSON values
decoded by json.loads, under each option set, and what Jinja2, configured as
transformers' apply_chat_template, renders of template snippets over the
same values (given as the variable v).

    python3 make_golden.py > golden.json
"""
import json
import sys

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

VALUES = [
    '{"name": "f", "arguments": {"b": 1, "a": [1, 2.5, -0.0, 1e-07, 1e+16, 1234567.0, 0.1, 100.0, 3.0e2]}}',
    '{"z": {"y": {"x": []}}, "e": {}, "n": null, "t": true, "f": false}',
    '{"s": "quote \\" backslash \\\\ slash / tab \\t nl \\n cr \\r bs \\b ff \\f ctl \\u0001 del \\u007f é 日本 😀 \\u2028"}',
    '[12345678901234567890, -12345678901234567890, -0, 0.000123, 1.5e-5, 1e22, 123456789012345678, 2.5e300, 5e-324]',
    '{"dup": 1, "other": 2, "dup": 3}',
    '[[], {}, [[]], [{}], ""]',
    '"just a string"',
    '3.14',
    '{"b": 2, "a": 1, "c": {"z": 0, "y": [3, 2]}}',
]

OPTIONS = [
    {},
    {"indent": 4},
    {"indent": 0},
    {"indent": "\t"},
    {"sort_keys": True},
    {"separators": [",", ":"]},
    {"ensure_ascii": True},
    {"indent": 2, "sort_keys": True, "ensure_ascii": True},
]

TEMPLATES = [
    "{{ v | tojson }}",
    "{% for k, x in v.items() %}{{ k }}={{ x | tojson }};{% endfor %}",
    "{{ v.keys() | list | tojson }}|{{ v.values() | list | tojson }}",
    "{% for k, x in v | items %}{{ k }};{% endfor %}",
    "{{ [7][-1] }}|{{ [7, 8][-2] }}|{{ [7][-2] is defined }}|{{ 'é日本'[-1] }}|{{ 'é日本'[1] }}|{{ 'ab'[5] is defined }}",
    "{{ (v | tojson)[-1] }}|{{ v['name'] if v is mapping and 'name' in v else '-' }}",
]


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def main():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    dumps = []
    for text in VALUES:
        for opts in OPTIONS:
            kw = dict(opts)
            if "separators" in kw:
                kw["separators"] = tuple(kw["separators"])
            dumps.append({"value": text, "options": opts, "text": tojson(json.loads(text), **kw)})
    renders = []
    for text in VALUES:
        for src in TEMPLATES:
            row = {"value": text, "template": src}
            try:
                row["text"] = env.from_string(src).render(v=json.loads(text))
            except Exception as e:  # a template error on this value: not compared
                row["error"] = type(e).__name__
            renders.append(row)
    json.dump({"source": "Python %s json.dumps, Jinja2 %s (make_golden.py)" % (sys.version.split()[0], jinja2.__version__),
               "dumps": dumps, "renders": renders}, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
