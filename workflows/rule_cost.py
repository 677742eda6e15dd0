"""How much work a CEL rule can do, known before it runs.

The interpreter (Rust, through the `cel` package) has no cost limit and cannot be interrupted, not
even by Celery's time limits, so a rule is bounded twice. At load, its shape: source length,
bracket nesting and comprehension depth (`all`, `exists`, `exists_one`, `map`, `filter` inside one
another, or over what a `map` made). Before each evaluation, an estimate from that shape and the
sizes of the inputs the rule can reach, against a budget: a rule over its budget is not run.

The estimate counts element steps. Each operation of a rule does at most work linear in the
largest value it touches; a comprehension repeats its body once per element. So a rule whose
comprehension bodies read only their own element is linear in its inputs (weight^depth x total
size), and one whose bodies also read `payload`, `context` or an outer element is polynomial
((weight x longest collection)^depth x largest value). Weight is the rule's token count, with a
regular expression counted as the work of compiling one, since `matches` compiles its pattern at
every call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

MAX_SOURCE_CHARS = 1000
MAX_NESTING = 24
MAX_COMPREHENSION_DEPTH = 2
DEFAULT_COST_BUDGET = 20_000_000

MACROS = frozenset({"all", "exists", "exists_one", "existsOne", "map", "filter"})
ROOTS = frozenset({"payload", "context"})
# Names that are not variables: literals, operators spelled as words, type names.
_NOT_VARIABLES = frozenset(
    {"true", "false", "null", "in", "int", "uint", "double", "bool", "string", "bytes"}
    | {"list", "map", "type", "null_type", "dyn"}
)
MAX_MATCHES = 4
# map and filter copy the list built so far at every element: a loop within their loop.
_ACCUMULATING = frozenset({"map", "filter"})

_TOKEN = re.compile(
    r"""
    (?P<skip>\s+|//[^\n]*)
    |(?P<string>
        (?:[rR][bB]?|[bB][rR])(?:'''.*?'''|\"\"\".*?\"\"\"|'[^'\n]*'|"[^"\n]*")
        |[bB]?(?:'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\"|'(?:\\.|[^\\'\n])*'|"(?:\\.|[^\\"\n])*")
    )
    |(?P<number>0[xX][0-9a-fA-F]+[uU]?|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[uU]?)
    |(?P<ident>[A-Za-z_][A-Za-z0-9_]*|`[^`\n]*`)
    |(?P<punct>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = {")", "]", "}"}
_CALLS = {"(", "["}


class RuleTooCostly(ValueError):
    """A rule whose shape is over a load-time limit."""


@dataclass(frozen=True)
class _Token:
    kind: str  # "string", "number", "ident" or "punct"
    text: str


@dataclass(frozen=True)
class _Comprehension:
    name: str
    dot: int  # index of the "." before the macro name
    receiver: int  # index of the first token of what it iterates
    args: tuple[tuple[int, int], ...]  # (start, end) token spans of its arguments
    close: int


@dataclass(frozen=True)
class RuleShape:
    """What the cost of a rule depends on, apart from its inputs."""

    length: int  # characters of source
    depth: int  # comprehensions within comprehensions, or over a map's result
    exponent: int  # the same, counting map and filter twice: they copy their result per element
    local: bool  # every comprehension body reads only elements it iterates itself
    weight: int  # tokens
    reads: tuple[tuple[str, ...], ...]  # the payload/context subtrees the rule can reach


@dataclass(frozen=True)
class InputSizes:
    longest_collection: int  # elements of the largest list or map
    total: int  # every value counted once, strings by their length


def rule_shape(source: str) -> RuleShape:
    """The shape of a rule that already compiles; RuleTooCostly if it is over a limit."""
    if len(source) > MAX_SOURCE_CHARS:
        raise RuleTooCostly(
            f"is {len(source)} characters long, more than the {MAX_SOURCE_CHARS} a rule may have"
        )
    tokens = [
        _Token(m.lastgroup or "punct", m.group())
        for m in _TOKEN.finditer(source)
        if m.lastgroup != "skip"
    ]
    match, nesting = _brackets(tokens)
    if nesting > MAX_NESTING:
        raise RuleTooCostly(
            f"nests brackets {nesting} deep, more than the {MAX_NESTING} a rule may"
        )
    comprehensions = _comprehensions(tokens, match)
    depth, exponent = _depths(comprehensions)
    if depth > MAX_COMPREHENSION_DEPTH:
        raise RuleTooCostly(
            f"nests comprehensions {depth} deep (all, exists, exists_one, map, filter inside one "
            f"another or over a map's result), more than the {MAX_COMPREHENSION_DEPTH} a rule may"
        )
    _check_matches(tokens, comprehensions)
    chained = any(_in_receiver(o, c) for c in comprehensions for o in comprehensions)
    local = not chained and all(
        _reads_own_elements(c, tokens, comprehensions) for c in comprehensions
    )
    return RuleShape(
        length=len(source),
        depth=depth,
        exponent=exponent,
        local=local,
        weight=len(tokens),
        reads=_reads(tokens),
    )


def estimated_cost(
    shape: RuleShape, *, payload: Any, context: Any, budget: int | None = None
) -> int:
    """Element steps a rule of this shape can take on these inputs, at most.

    With a budget, measuring stops as soon as the estimate is over it: the figure is then a
    lower bound of the estimate, and refusing a rule costs little even on a large payload.
    """
    if shape.depth == 0:
        return shape.weight  # each operation once: linear in inputs already bounded in size

    def cost(sizes: InputSizes) -> int:
        longest = max(sizes.longest_collection, 1)
        total = max(sizes.total, shape.length)  # literals are no longer than the source
        if shape.local:
            return shape.weight * longest ** (shape.exponent - 1) * total
        return shape.weight * longest**shape.exponent * total

    enough = None if budget is None else (lambda sizes: cost(sizes) > budget)
    return cost(input_sizes(shape.reads, {"payload": payload, "context": context}, enough))


def input_sizes(
    reads: tuple[tuple[str, ...], ...],
    document: dict[str, Any],
    enough: Callable[[InputSizes], bool] | None = None,
) -> InputSizes:
    """Sizes of the subtrees at these paths (each path as deep as the document has it).

    `enough`, asked every few thousand values, ends the count early.
    """
    longest = total = 0
    for value in _subtrees(reads, document):
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                keys = [k for k in item if isinstance(k, str)]
                total += 1 + len(item) + sum(map(len, keys))  # the map, each key and its text
                children: Any = item.values()
            elif isinstance(item, list | tuple):
                total += 1
                children = item
            else:
                total += 1 + (len(item) if isinstance(item, str) else 0)
                continue
            grew = len(item) > longest
            longest = max(longest, len(item))
            for child in children:
                if isinstance(child, dict | list | tuple | str):
                    stack.append(child)
                else:
                    total += 1  # a number, a boolean or null
            if enough is not None and (grew or len(stack) % 1024 == 0):
                partial = InputSizes(longest_collection=longest, total=total + len(stack))
                if enough(partial):
                    return partial
    return InputSizes(longest_collection=longest, total=total)


def _subtrees(reads: tuple[tuple[str, ...], ...], document: dict[str, Any]) -> Iterator[Any]:
    for path in reads:
        if any(other != path and path[: len(other)] == other for other in reads):
            continue  # inside a subtree already counted
        current: Any = document
        for part in path:
            if not isinstance(current, dict) or part not in current:
                break
            current = current[part]
        yield current


def _in_receiver(inner: _Comprehension, outer: _Comprehension) -> bool:
    """Whether `outer` iterates what the map `inner` made."""
    return inner.name == "map" and outer.receiver <= inner.dot < outer.dot


def _depths(comprehensions: list[_Comprehension]) -> tuple[int, int]:
    """(depth, exponent) of the deepest comprehension; inner ones first, as spans nest."""
    depths: dict[int, tuple[int, int]] = {}
    for c in sorted(comprehensions, key=lambda c: c.close - c.receiver):
        inner = [
            depths[o.dot]
            for o in comprehensions
            if o.dot in depths and (c.args[0][0] <= o.dot < c.close or _in_receiver(o, c))
        ]
        own = 2 if c.name in _ACCUMULATING else 1
        depths[c.dot] = (
            1 + max((d for d, _ in inner), default=0),
            own + max((e for _, e in inner), default=0),
        )
    return (
        max((d for d, _ in depths.values()), default=0),
        max((e for _, e in depths.values()), default=0),
    )


def _check_matches(tokens: list[_Token], comprehensions: list[_Comprehension]) -> None:
    """A pattern is compiled at every call, which can take tens of milliseconds."""
    calls = [i for i, t in enumerate(tokens) if t.kind == "ident" and t.text == "matches"]
    if len(calls) > MAX_MATCHES:
        raise RuleTooCostly(
            f"calls matches {len(calls)} times, more than the {MAX_MATCHES} a rule may"
        )
    for i in calls:
        if any(c.args[0][0] <= i < c.close for c in comprehensions):
            raise RuleTooCostly(
                "calls matches inside a comprehension, which compiles the pattern again for "
                "every element"
            )


def _brackets(tokens: list[_Token]) -> tuple[dict[int, int], int]:
    """Matching bracket positions (both ways) and the deepest nesting."""
    match: dict[int, int] = {}
    stack: list[int] = []
    deepest = 0
    for i, token in enumerate(tokens):
        if token.kind != "punct":
            continue
        if token.text in _OPENERS:
            stack.append(i)
            deepest = max(deepest, len(stack))
        elif token.text in _CLOSERS and stack:
            opener = stack.pop()
            match[opener], match[i] = i, opener
    return match, deepest


def _comprehensions(tokens: list[_Token], match: dict[int, int]) -> list[_Comprehension]:
    found = []
    for i in range(len(tokens) - 2):
        dot, name, paren = tokens[i], tokens[i + 1], tokens[i + 2]
        if dot.text != "." or name.kind != "ident" or name.text not in MACROS:
            continue
        if paren.text != "(" or i + 2 not in match:
            continue
        close = match[i + 2]
        args, start, j = [], i + 3, i + 3
        while j < close:
            if tokens[j].text in _OPENERS and j in match:
                j = match[j]
            elif tokens[j].text == ",":
                args.append((start, j))
                start = j + 1
            j += 1
        args.append((start, close))
        found.append(
            _Comprehension(name.text, i, _receiver_start(tokens, match, i), tuple(args), close)
        )
    return found


def _receiver_start(tokens: list[_Token], match: dict[int, int], dot: int) -> int:
    """Where the postfix expression before `.macro(` begins (a.b[0].f(x) and the like)."""
    j = dot - 1
    while j > 0:
        if tokens[j].text in _CLOSERS and j in match:
            j = match[j]
        if j == 0:
            break
        before = tokens[j - 1]
        if before.text == ".":
            j -= 2  # a field or method of what precedes
        elif tokens[j].text in _CALLS and (
            before.text in _CLOSERS or (before.kind == "ident" and before.text != "in")
        ):
            j -= 1  # a call or an index of what precedes
        else:
            return j
    return max(j, 0)


def _reads_own_elements(
    c: _Comprehension, tokens: list[_Token], comprehensions: list[_Comprehension]
) -> bool:
    """Whether the body mentions no variable but those its own comprehensions bind."""
    bound = {
        tokens[o.args[0][0]].text
        for o in comprehensions
        if c.dot <= o.dot < c.close and o.args[0][1] - o.args[0][0] == 1
    }
    for start, end in c.args[1:]:
        for j in range(start, end):
            token = tokens[j]
            if token.kind != "ident" or token.text in _NOT_VARIABLES or token.text in bound:
                continue
            if j > 0 and tokens[j - 1].text == ".":
                continue  # a field or method name
            if j + 1 < len(tokens) and tokens[j + 1].text == "(":
                continue  # a function name
            return False
    return True


def _reads(tokens: list[_Token]) -> tuple[tuple[str, ...], ...]:
    """Paths under payload and context the rule mentions, each up to its first call or index."""
    paths: dict[tuple[str, ...], None] = {}
    for i, token in enumerate(tokens):
        if token.kind != "ident" or token.text not in ROOTS:
            continue
        if i > 0 and tokens[i - 1].text == ".":
            continue
        path = [token.text]
        j = i + 1
        while j + 1 < len(tokens) and tokens[j].text == "." and tokens[j + 1].kind == "ident":
            if j + 2 < len(tokens) and tokens[j + 2].text == "(":
                break  # a method: what it runs on is the path so far
            path.append(tokens[j + 1].text.strip("`"))
            j += 2
        paths[tuple(path)] = None
    return tuple(paths)
