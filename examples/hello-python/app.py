"""The `hello` example plugin in Python: the same three tools, schemas and
answers as examples/hello-plugin (Rust).

Build: scripts/build-plugins (or `componentize-py -d ../../plugins/sdk/wit
-w tool-plugin componentize app -p . -p ../../plugins/sdk-python -o
hello-python.wasm`). Test natively: `python3 -m unittest` here with
PYTHONPATH=../../plugins/sdk-python.
"""
from collections import Counter
from dataclasses import dataclass, field
from typing import Annotated, Any, List

from logai_plugin import Context, Field, Json, Structured, log, plugin, tool


@dataclass
class Hello:
    """Greet someone by name. Returns one line of text."""

    name: Annotated[str, Field("Who to greet.", min_length=1, max_length=200)]
    shout: Annotated[bool, Field("Greet in capitals.")] = False


@tool("hello", title="Say hello", read_only=True)
def hello(args: Hello, ctx: Context) -> str:
    g = f"Hello, {args.name}! Greetings from a WebAssembly component."
    return g.upper() if args.shout else g


@dataclass
class WordCount:
    """Count the lines, words, characters and bytes of a text, and list its most frequent words."""

    text: Annotated[str, Field("The text to count.")]
    top: Annotated[int, Field("How many of the most frequent words to list.", minimum=0, maximum=100)] = 5


@dataclass
class WordFreq:
    """One word and how often it occurs."""

    word: Annotated[str, Field("The word, lowercased.")]
    count: Annotated[int, Field("How often it occurs.", minimum=0)]


@dataclass
class Counts:
    """The structured result of `word_count`."""

    lines: Annotated[int, Field("Lines in the text.", minimum=0)]
    words: Annotated[int, Field("Whitespace-separated words.", minimum=0)]
    chars: Annotated[int, Field("Unicode characters.", minimum=0)]
    bytes: Annotated[int, Field("UTF-8 bytes.", minimum=0)]
    top_words: Annotated[List[WordFreq], Field("The most frequent words (lowercased), most frequent first.")]


def count(text: str, top: int) -> Counts:
    words = text.split()
    freq = Counter(w for w in (x.strip("".join(c for c in set(x) if not c.isalnum())).lower() for x in words) if w)
    ranked = sorted(freq.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    lines = 0 if not text else text.count("\n") + (0 if text.endswith("\n") else 1)
    return Counts(lines, len(words), len(text), len(text.encode()), [WordFreq(w, c) for w, c in ranked])


@tool("word_count", title="Count words", read_only=True, output=Counts)
def word_count(args: WordCount, ctx: Context) -> Structured:
    c = count(args.text, args.top)
    log.debug(f"word_count: {c.words} words for {ctx.user}")
    return Structured(f"{c.lines} lines, {c.words} words, {c.chars} characters, {c.bytes} bytes", c)


@dataclass
class EchoJson:
    """Return the `value` argument unchanged, as structured content and as JSON text."""

    value: Annotated[Any, Field("Any JSON value.")]


@dataclass
class Echoed:
    """What `echo_json` returns."""

    value: Annotated[Any, Field("The value as sent.")]


@tool("echo_json", title="Echo JSON", read_only=True, strict=False, output=Echoed)
def echo_json(args: EchoJson, ctx: Context) -> Json:
    return Json(Echoed(args.value))


Tools = plugin(hello, word_count, echo_json)
