"""Writes golden.json for data/chat's TestPythonJSON, TestPythonSubscripts
and TestPythonSnippets: what Python's json.dumps (transformers' tojson
filter) writes of JSON values decoded by json.loads, under each option set,
what Jinja2, configured as transformers' apply_chat_template, renders of
template snippets over the same values (given as the variable v), and of
more snippets rendered once each over SNIPPET_VARS.

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
    '{}',
    '[true, false, 1, 1.5, "1", null, 123456789012345678901234567890]',
    '{"type": "object", "properties": {}, "required": []}',
    '{"b": 1, "B": 2, "a": {"x": 1}, "C": [], "é": 0}',
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
    "{% if v %}T{% else %}F{% endif %}{% if not v %}!{% endif %}{{ (v or 'or') == 'or' }}|{{ v is mapping }}|{{ v | length }}"
    "{% if v is mapping and v.properties is defined %}|{% if v.properties %}P{% else %}p{% endif %}{{ v.properties | tojson }}{% endif %}",
    "{% if v is mapping %}{% for k, x in v | dictsort %}{{ k }}={{ x | tojson }};{% endfor %}"
    "|{% for k, x in v | dictsort(reverse=true) %}{{ k }};{% endfor %}"
    "|{% for k, x in v | dictsort(true) %}{{ k }};{% endfor %}{% endif %}",
    "{% if v is mapping %}{{ v.get('c') | tojson }}|{{ v.get('a', 'dflt') | tojson }}|{{ v.get('zz', 'dflt') }}"
    "|{{ v.get('zz') is none }}|{{ v.copy() | tojson }}{% endif %}",
    "{% if v is iterable and v is not string and v is not mapping %}{% for x in v %}"
    "{{ x is number }}{{ x is integer }}{{ x is float }};{% endfor %}{% endif %}",
    "{% if v is mapping %}{% for k, x in v.items() %}{{ x }};{% endfor %}{% else %}{{ v }}{% endif %}|{{ [v] }}|{{ v | string }}|{{ 'a' ~ v }}|{{ [v, none] | join('/') }}",
]

# Snippets rendered once each, with messages (one user message) and s.
SNIPPET_VARS = {
    "messages": [{"role": "user", "content": "Hi there"}],
    "s": " a\u3000b\x1fc\u00a0d\n ",
}

SNIPPETS = [
    # dictsort on dict literals and on a message (a Go map in ftune)
    "{% for k, x in {'b': 1, 'a': 2, 'C': 3} | dictsort %}{{ k }}={{ x }};{% endfor %}",
    "{% for k, x in messages[0] | dictsort %}{{ k }}={{ x }};{% endfor %}",
    "{% for k, x in {'b': 2, 'a': 3, 'B': 1} | dictsort(true) %}{{ k }};{% endfor %}"
    "|{% for k, x in {'b': 2, 'a': 3, 'B': 1} | dictsort(by='value') %}{{ k }};{% endfor %}"
    "|{% for k, x in {'b': 2, 'a': 3, 'B': 1} | dictsort(false, 'value', true) %}{{ k }};{% endfor %}"
    "|{% for k, x in {'b': 1, 'B': 2, 'a': 0} | dictsort %}{{ k }};{% endfor %}"
    "|{% for k, x in {'b': 1, 'B': 2, 'a': 0} | dictsort(reverse=true) %}{{ k }};{% endfor %}",
    "{% for k, x in {2: 'a', 10: 'b', 1.5: 'c'} | dictsort %}{{ x }};{% endfor %}",
    "{% for p in {'b': 1, 'a': 2} | dictsort %}{{ p[0] }}{{ p[1] }};{% endfor %}{{ ({'b': 1, 'a': 2} | dictsort | first)[0] }}",
    # an empty dict is false
    "{% if {} %}T{% else %}F{% endif %}{% if {'a': 1} %}T{% else %}F{% endif %}{% if not {} %}!{% endif %}"
    "{{ {} or 'or' }}{{ {} and 'and' }}{{ dict() }}{% if dict() %}T{% else %}F{% endif %}{{ {} | length }}"
    "{{ {} is mapping }}{{ {} | tojson }}{{ {} | items | list }}{{ {}.items() | list }}{{ {} == {} }}",
    "{% set ns = namespace(d={}) %}{% if ns.d %}T{% else %}F{% endif %}{{ {'a': {}} | tojson }}{{ ({'a': {}}).a | tojson }}",
    # startswith / endswith
    "{{ ''.endswith('x') }}{{ ''.startswith('x') }}{{ ''.endswith('') }}{{ 'abc'.endswith(('x', 'c')) }}"
    "{{ 'abc'.startswith(('x', 'a')) }}{{ 'abc'.startswith(('x', 'y')) }}{{ 'abc'.startswith('b', 1) }}"
    "{{ 'abc'.endswith('b', 0, 2) }}{{ 'abc'.startswith('a', -3) }}{{ 'abc'.startswith('', 4) }}"
    "{{ 'abc'.startswith('', 3) }}{{ 'abc'.endswith('c', -1) }}{{ 'é日本'.endswith('本', 2) }}"
    "{{ 'é日本'.startswith('日', 1, 2) }}{{ 'abc'.startswith('a', none, 1) }}{{ 'abc'.endswith('bc', -2, none) }}",
    # split / rsplit / strip without arguments
    "{{ ' a  b\n c '.split() | tojson }}{{ 'a b c'.split(' ', 1) | tojson }}{{ ' a b c '.split(none, 1) | tojson }}"
    "{{ 'a,b,,c'.split(',') | tojson }}{{ 'a b c'.rsplit(' ', 1) | tojson }}{{ ' a b c '.rsplit(none, 1) | tojson }}"
    "{{ ''.split(',') | tojson }}{{ ''.split() | tojson }}{{ '  '.split() | tojson }}{{ 'a b'.split(maxsplit=0) | tojson }}"
    "{{ 'a<>b<>c'.split('<>', maxsplit=1) | tojson }}{{ 'a,b,c'.rsplit(',') | tojson }}{{ 'a,b,c'.split(',', 0) | tojson }}"
    "{{ s.split() | tojson }}{{ s.split(none, 1) | tojson }}{{ s.rsplit(none, 2) | tojson }}{{ 'a b c'.split()[-1] }}",
    "[{{ '  x '.strip() }}][{{ '  x '.lstrip() }}][{{ '  x '.rstrip() }}][{{ 'xxaxx'.strip('x') }}]"
    "[{{ 'www.example.com'.strip('cmowz.') }}][{{ 'ab'.lstrip('') }}][{{ 'é日本é'.strip('é') }}]"
    "{{ s.strip() | tojson }}{{ s.lstrip() | tojson }}{{ s.rstrip() | tojson }}{{ s.strip(none) | tojson }}",
    # string filters on undefined and on non-strings
    "[{{ nothing | trim }}][{{ nothing | lower }}][{{ nothing | upper }}]"
    "[{{ nothing | replace('a', 'b') }}][{{ 5 | trim }}][{{ '  x  ' | trim }}][{{ 'xxaxx' | trim('x') }}]"
    "[{{ s | trim | tojson }}][{{ messages[0].description | trim }}]"
    "[{{ none | trim }}][{{ none | lower }}][{{ none | upper }}][{{ none | replace('o', '0') }}][{{ [1, 'a'] | upper }}]"
    "[{{ none | string }}][{{ none ~ 'x' }}][{{ nothing ~ 'x' }}][{{ [none, nothing] | join(',') }}][{{ '%s|%r' % (none, 'a\\nb') }}]",
    # printing: None, containers as repr
    "{{ none }}|{{ None }}|{{ [none] }}|{{ {'d': 'a\\nb', 'q': \"it's\", 'e': 'é\\x00'} }}|{{ [1.0, 1e100, 1e-7, true, -0.0] }}"
    "|{{ nothing }}|{{ {'a': none}.a }}|{{ {'a': 1}.get('b') }}|{{ messages[0].get('b') }}{% set x = none %}|{{ x }}|{{ x is none }}",
    # subscripts of dicts by other keys than strings
    "{% set d = {16384: 'x', 'k': 1, 2: 'two', true: 'T'} %}{{ d[16384] }}{{ d['k'] }}{{ d.k }}{{ d[2] }}{{ d[2.0] }}"
    "{{ d[1] }}{{ d[7] is defined }}{{ messages[0][0] is defined }}{{ 16384 in d }}",
    "{{ messages[0].get('content') }}|{{ messages[0].get('nope', 'dflt') }}|{{ messages[0].get('nope') is none }}",
    # method calls on parenthesized expressions; method results are str
    "{{ ('  a b  ' | trim).replace('a', 'c') }}|{{ ('x' ~ 'y').upper() }}|{{ 'a'.upper() | tojson }}"
    "|{{ 'a b'.split() | tojson }}|{{ 'A'.lower() ~ 'b' }}|{{ ('abc' | upper).startswith('AB') }}"
    "|{{ ('a-b' | trim).split('-') | tojson }}|{{ 'Ab'.swapcase() | tojson }}",
    # find, rfind, index, rindex and count count characters, not bytes;
    # start and end as a slice's (negative, None, past the end); ''
    "{{ 'héllo'.find('l') }}|{{ 'héllo'.rfind('l') }}|{{ 'héllo'.index('l') }}|{{ 'héllo'.rindex('l') }}"
    "|{{ 'héllo'.count('l') }}|{{ 'héllo'.count('') }}|{{ ''.count('') }}|{{ 'héllo'.find('') }}|{{ 'héllo'.rfind('') }}"
    "|{{ 'héllo'.find('z') }}|{{ 'aaaa'.count('aa') }}|{{ 'é日本é日本'.count('日本') }}",
    "{{ 'é日本é日本'.find('日', 2) }}|{{ 'é日本é日本'.find('日', -2) }}|{{ 'é日本é日本'.rfind('日', 0, -2) }}"
    "|{{ 'é日本é日本'.find('本', 1, 2) }}|{{ 'é日本é日本'.count('日', 1, -1) }}|{{ 'é日本é'.index('é', 1) }}"
    "|{{ 'é日本é'.rindex('é', 0, 3) }}|{{ 'abc'.find('', 3) }}|{{ 'abc'.find('', 4) }}|{{ 'abc'.rfind('', 4) }}"
    "|{{ 'abc'.rfind('', 0, 2) }}|{{ 'abc'.count('', 4) }}|{{ 'abc'.count('', 2, 1) }}|{{ 'abc'.find('', 2, 1) }}"
    "|{{ 'abc'.find('c', none, -1) }}|{{ 'abc'.find('a', -10) }}|{{ 'abc'.count('', -10, 10) }}|{{ 'abc'.find('b', true) }}",
    "{% set c = 'Réflexion : ça va…</think>Réponse : très bien' %}{{ c[c.find('</think>') + 8:] }}|{{ c[:c.find('</think>')] }}"
    "|{{ c[c.rfind('é'):] }}|{{ c[c.index('ç'):c.rindex('…')] }}|{{ c.count('é') }}",
    # dict() keeps its keywords' order, after a positional mapping's or
    # pairs' items; other calls' keywords are unchanged
    "{{ dict(b=1, a=2) | tojson }}|{% for k in dict(b=1, a=2) %}{{ k }}{% endfor %}"
    "|{{ dict(b=1, a=2, c=3, d=4, e=5, f=6, g=7, h=8, i=9) | tojson }}|{{ dict(z=1, y=dict(x=1, w=2)) | tojson }}"
    "|{{ dict(b=1, a=2).items() | list | tojson }}|{{ dict(b=1, a=2).keys() | list }}|{{ dict(b=1, a=2) }}",
    "{% set kw = {'b': 1, 'a': 2} %}{{ dict(kw, c=3) | tojson }}|{{ dict(kw) | tojson }}|{{ dict({'z': 1}, b=1, z=2) | tojson }}"
    "|{{ dict([('b', 1), ('a', 2)]) | tojson }}|{{ dict(c=0, b=kw.b + 1, a=[kw.a], d=kw | length, e='x' ~ 'y') | tojson }}"
    "|{% macro f(a, b) %}{{ a }}{{ b }}{% endmacro %}{{ f(b=1, a=2) }}|{{ namespace(b=1, a=2).a }}",
    # iterable is iter() succeeding: on Undefined (empty) but not None;
    # Hermes' tool template names an untyped schema's union so
    "{{ nothing is iterable }}|{{ messages[0].type is iterable }}|{{ none is iterable }}|{{ 3 is iterable }}"
    "|{{ 'ab' is iterable }}|{{ messages is iterable }}|{{ messages[0] is iterable }}"
    "|{% set t = messages[0].type %}{% if t is iterable %}Union[{% for x in t %}{{ x }},{% endfor %}]{% endif %}",
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
    snippets = []
    for src in SNIPPETS:
        row = {"template": src}
        try:
            row["text"] = env.from_string(src).render(**SNIPPET_VARS)
        except Exception as e:
            row["error"] = type(e).__name__
        snippets.append(row)
    json.dump({"source": "Python %s json.dumps, Jinja2 %s (make_golden.py)" % (sys.version.split()[0], jinja2.__version__),
               "dumps": dumps, "renders": renders, "snippet_vars": SNIPPET_VARS, "snippets": snippets},
              sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
