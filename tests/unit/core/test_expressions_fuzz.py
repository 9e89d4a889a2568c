"""Property-based fuzzing of the restricted expression evaluator (hypothesis).

Random text and random syntax trees (the allowed grammar mixed with forbidden constructs) are
parsed and evaluated on 10^5 events, flat and jagged. Every outcome must be a value over the
events or an :class:`ExpressionError` naming the expression (and the construct, at its line and
column), within two seconds, reading only the expression's own columns and never compiling or
executing anything but the expression's own syntax tree. Examples per run (fixed, derandomized
so CI is reproducible): 400 random texts, 400 trees mixing allowed and forbidden constructs and
300 trees of the allowed grammar, each lenient or strict (warnings as errors); with the 33
pathological inputs (both ways) about 13 s of tests on two busy cores.
"""

from __future__ import annotations

import re
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import awkward as ak
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from thetaflow.core.expressions import (
    FUNCTIONS,
    MAX_OPERATIONS,
    MAX_SOURCE_LENGTH,
    ExpressionError,
    parse_expression,
)

N_EVENTS = 100_000
TIME_LIMIT_S = 2.0
CONTEXT = "fuzz.expr"
FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

_RNG = np.random.default_rng(19)
_JET_COUNTS = _RNG.poisson(2.0, N_EVENTS)
COLUMNS: dict[str, Any] = {
    "met": _RNG.exponential(40.0, N_EVENTS),
    "eta": _RNG.normal(0.0, 2.0, N_EVENTS),
    # zeros, negatives and non-finite values make divisions, logs and roots warn
    "weight": np.where(_RNG.random(N_EVENTS) < 0.1, 0.0, _RNG.normal(1.0, 1.0, N_EVENTS)),
    "n_jets": _RNG.integers(0, 6, N_EVENTS),
    "tight": _RNG.random(N_EVENTS) < 0.5,
    "jet_pt": ak.unflatten(_RNG.exponential(30.0, int(_JET_COUNTS.sum())), _JET_COUNTS),
    "jet_tag": ak.unflatten(_RNG.random(int(_JET_COUNTS.sum())) < 0.3, _JET_COUNTS),
}
COLUMNS["weight"][:3] = [np.inf, -np.inf, np.nan]

# --- instrumentation --------------------------------------------------------------------


class RecordingNamespace(Mapping[str, Any]):
    """The columns, recording every name the evaluator reads, probes for, or lists."""

    def __init__(self, columns: Mapping[str, Any]) -> None:
        self._columns = columns
        self.read: set[str] = set()
        self.probed: set[str] = set()
        self.listed = False

    def __getitem__(self, name: str) -> Any:
        self.read.add(name)
        return self._columns[name]

    def __contains__(self, name: object) -> bool:
        self.probed.add(str(name))
        return name in self._columns

    def __iter__(self) -> Iterator[str]:
        self.listed = True
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)


_AUDITED: list[tuple[str, tuple[Any, ...]]] = []
_AUDITING: list[bool] = [False]
_DANGEROUS = re.compile(
    r"os\.(system|exec|spawn|posix_spawn|fork|kill)|subprocess\.|socket\.|ctypes\.|builtins\.input"
)


def _record(name: str, args: tuple[Any, ...]) -> None:
    """Audit hook: keep the events raised while an expression is parsed or evaluated."""
    if _AUDITING[0]:
        _AUDITED.append((name, args))


sys.addaudithook(_record)  # audit hooks cannot be removed; it records only inside check()


def _unexpected_events(text: str) -> list[str]:
    """Audited events that are not the parse of ``text`` or a lazy import by numpy/awkward."""
    unexpected = []
    for name, args in _AUDITED:
        if name == "compile":  # ast.parse of the expression, and nothing else
            ok = args[0] in (text, text.encode(errors="surrogatepass"))
        elif name == "exec":  # module code of a lazily imported library module
            ok = getattr(args[0], "co_filename", "").endswith(".py")
        elif name == "open":
            ok = str(args[0]).endswith((".py", ".pyc", ".so"))
        else:
            ok = not _DANGEROUS.match(name)
        if not ok:
            unexpected.append(f"{name}{str(args)[:200]}")
    return unexpected


# --- the properties ---------------------------------------------------------------------

_NEWLINE = re.compile(r"\r\n|\r|\n")


def _check_error(error: ExpressionError, text: str) -> None:
    """The error names the context, the expression and, if known, the construct at its place."""
    message = str(error)
    assert message.startswith(f"{CONTEXT}: "), message
    assert error.detail in message
    if not text:
        assert "empty" in message
        return
    assert error.source == text
    if len(text) <= 100:
        assert repr(text) in message
    if error.construct is not None and error.column is not None:
        assert error.line is not None
        line = _NEWLINE.split(text)[error.line - 1]
        first_line = _NEWLINE.split(error.construct)[0]
        assert line[error.column - 1 :].startswith(first_line), (message, line, error.column)


def _check_value(result: Any) -> None:
    """The result is real numbers or booleans: a scalar or an array over the events."""
    if isinstance(result, np.ndarray | ak.Array):
        assert len(result) == N_EVENTS
        flat = (
            ak.to_numpy(ak.flatten(result, axis=None)) if isinstance(result, ak.Array) else result
        )
        assert flat.dtype.kind in "biuf", flat.dtype
    else:
        assert isinstance(result, bool | int | float | np.bool_ | np.integer | np.floating), result


def check(source: str, *, strict: bool, allowed_names: frozenset[str] | None = None) -> str:
    """Parse and evaluate ``source`` on the columns; assert the properties; name the outcome.

    With ``strict``, warnings are errors and numpy raises on floating-point errors: those must
    come out as ExpressionError too. Any other exception propagates and fails the test. A slow
    evaluation is timed once more, as the machine may have been busy: a blow-up is slow twice.
    """
    elapsed, outcome = _check_once(source, strict, allowed_names)
    if elapsed >= TIME_LIMIT_S:
        elapsed, outcome = _check_once(source, strict, allowed_names)
    assert elapsed < TIME_LIMIT_S, f"{source[:200]!r} took {elapsed:.2f} s"
    return outcome


def _check_once(
    source: str, strict: bool, allowed_names: frozenset[str] | None
) -> tuple[float, str]:
    """One parse and evaluation of :func:`check`: how long it took, in seconds, and the outcome."""
    text = source.strip()
    namespace = RecordingNamespace(COLUMNS)
    expression = None
    _AUDITED.clear()
    start = time.perf_counter()
    try:
        with warnings.catch_warnings(), np.errstate(all="raise" if strict else "ignore"):
            warnings.simplefilter("error" if strict else "ignore")
            _AUDITING[0] = True
            try:
                expression = parse_expression(source, allowed_names=allowed_names, context=CONTEXT)
                result = expression.evaluate(namespace)
            finally:
                _AUDITING[0] = False
    except ExpressionError as error:
        elapsed = time.perf_counter() - start
        _check_error(error, text)
        outcome = "rejected" if expression is None else "failed when evaluating"
    else:
        elapsed = time.perf_counter() - start
        _check_value(result)
        outcome = f"value ({'array' if isinstance(result, np.ndarray | ak.Array) else 'scalar'})"
    assert not _unexpected_events(text), _unexpected_events(text)
    if expression is None:  # rejected when parsing: the columns were not touched
        assert not (namespace.read or namespace.probed or namespace.listed)
        return elapsed, outcome
    assert namespace.read | namespace.probed <= expression.names
    assert expression.functions <= set(FUNCTIONS)
    if allowed_names is not None:
        assert expression.names <= allowed_names
    if namespace.listed:  # only to list the available names next to a missing one
        assert not expression.names <= set(COLUMNS)
    return elapsed, outcome


# --- strategies -------------------------------------------------------------------------

COLUMN_NAMES = st.sampled_from(sorted(COLUMNS))
NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(
        ["True", "False", "0", "0.0", "1e308", "1e999", "1_000", "0x7f", "0o17", "0b101", "9" * 300]
    ),
)
FORBIDDEN_LEAVES = st.sampled_from(
    [
        "'text'",
        "b'bytes'",
        "None",
        "1j",
        "...",
        "_hidden",
        "__builtins__",
        "__import__",
        "globals",
        "unknown_column",
        "'a' * 10 ** 9",
        "__import__('os').system('true')",
        "open('/etc/passwd').read()",
        "().__class__.__base__.__subclasses__()",
    ]
)

UNARY = st.sampled_from(["-", "+", "not ", "~"])
BINARY = st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "&", "|", "^"])
BOOLEAN = st.sampled_from([" and ", " or "])
COMPARISON = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
# Python breaks lines only at \n, \r and \r\n, str.splitlines also at \x0c, \x1c, \u2028...
SPACE = st.sampled_from([" ", "\t", "\n", "\r", "\r\n", "\x0c", " # \x1c\u2028\x85\n", "\\\n"])


def _allowed(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """One node of the allowed grammar over ``children``."""

    def call(name: str, arguments: list[str]) -> str:
        return f"{name}({', '.join(arguments[: FUNCTIONS[name].arity])})"

    def compare(first: str, rest: list[tuple[str, str]]) -> str:
        return f"({first})" + "".join(f" {op} ({operand})" for op, operand in rest)

    return st.one_of(
        st.builds(lambda op, a: f"{op}({a})", UNARY, children),
        st.builds(
            lambda a, space, op, b: f"({a}){space}{op} ({b})", children, SPACE, BINARY, children
        ),
        st.builds(
            lambda op, items: op.join(f"({item})" for item in items),
            BOOLEAN,
            st.lists(children, min_size=2, max_size=4),
        ),
        st.builds(compare, children, st.lists(st.tuples(COMPARISON, children), min_size=1)),
        st.builds(
            call, st.sampled_from(sorted(FUNCTIONS)), st.lists(children, min_size=3, max_size=3)
        ),
    )


FORBIDDEN_TEMPLATES = [
    "({0}) << ({1})",
    "({0}) >> ({1})",
    "({0}) @ ({1})",
    "({0}) is ({1})",
    "({0}) is not ({1})",
    "({0}) in ({1})",
    "({0}) not in ({1})",
    "({0}).real",
    "({0}).__class__",
    "({0})[{1}]",
    "({0})[{1}:{2}]",
    "(lambda: {0})",
    "(lambda v: v)({0})",
    "[v for v in ({0})]",
    "{{v for v in ({0})}}",
    "{{v: v for v in ({0})}}",
    "sum(v for v in ({0}))",
    "f'{{{0}}}'",
    '"%s" % ({0})',
    "(y := {0})",
    "abs(*({0}))",
    "maximum(*[{0}, {1}])",
    "({0}) if ({1}) else ({2})",
    "[{0}, {1}]",
    "({0}, {1})",
    "{{{0}: {1}}}",
    "{{{0}}}",
    "await ({0})",
    "(yield {0})",
    "eval(str({0}))",
    "getattr({0}, 'real')",
    "print({0})",
    "abs(x={0})",
    "sqrt({0}, {1})",
    "where({0})",
    "abs({0})({1})",
    "max({0}, {1})",
]


def _forbidden(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A forbidden construct over ``children``."""
    return st.builds(
        lambda template, items: template.format(*items),
        st.sampled_from(FORBIDDEN_TEMPLATES),
        st.lists(children, min_size=3, max_size=3),
    )


ALLOWED_TREES = st.recursive(st.one_of(COLUMN_NAMES, NUMBERS), _allowed, max_leaves=24)
MIXED_TREES = st.builds(
    lambda tree, parenthesize: f"({tree})" if parenthesize else tree,  # lines break inside
    st.recursive(
        st.one_of(COLUMN_NAMES, NUMBERS, FORBIDDEN_LEAVES),
        lambda children: st.one_of(_allowed(children), _forbidden(children)),
        max_leaves=24,
    ),
    st.booleans(),
)

TOKENS = st.sampled_from(
    [
        *sorted(COLUMNS),
        *sorted(FUNCTIONS),
        *"+-*/%&|^~<>=!()[]{}.,:;@'\"#\\_",
        "**",
        "//",
        "<=",
        "==",
        "and",
        "or",
        "not",
        "is",
        "in",
        "if",
        "else",
        "for",
        "lambda",
        "import",
        "yield",
        "await",
        "__import__",
        "__class__",
        "f'",
        "b'",
        ":=",
        "*",
        "1e308",
        "9" * 40,
        "0x",
        "1j",
        "1_",
        "None",
        "True",
        " ",
        "\t",
        "\n",
        "\r",
        "\r\n",
        "\\\n",
        "\x00",
        "\x0c",
        "\x1c",
        "\x85",
        "\u2028",
        "\ud800",
        "\N{FULLWIDTH LATIN SMALL LETTER X}",
        "\N{MATHEMATICAL BOLD SMALL X}",
        "é",
        "€",
    ]
)
RANDOM_TEXT = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=40),
    st.lists(TOKENS, max_size=40).map("".join),
    st.lists(TOKENS, max_size=40).map(" ".join),
)


# --- the fuzz tests ---------------------------------------------------------------------


@settings(FUZZ, max_examples=400)
@given(source=RANDOM_TEXT, strict=st.booleans())
def test_random_text(source: str, strict: bool) -> None:
    """Random characters and token soup: a value or an ExpressionError, never anything else."""
    event(check(source, strict=strict))


@settings(FUZZ, max_examples=400)
@given(source=MIXED_TREES, strict=st.booleans(), restrict=st.booleans())
def test_random_trees_with_forbidden_constructs(source: str, strict: bool, restrict: bool) -> None:
    """Trees mixing the grammar and forbidden constructs; with ``restrict``, only the columns
    are allowed names."""
    event(check(source, strict=strict, allowed_names=frozenset(COLUMNS) if restrict else None))


@settings(FUZZ, max_examples=300)
@given(source=ALLOWED_TREES, strict=st.booleans())
def test_random_trees_of_the_grammar(source: str, strict: bool) -> None:
    """Trees of the allowed grammar over the columns: evaluated within the time limit."""
    event(check(source, strict=strict, allowed_names=frozenset(COLUMNS)))


# --- pathological inputs ----------------------------------------------------------------


def _longest(item: str, separator: str) -> str:
    """``item`` repeated, joined by ``separator``, as often as the length limit allows."""
    return separator.join([item] * ((MAX_SOURCE_LENGTH + len(separator)) // len(item + separator)))


# the most operations allowed, in a shallow tree (a chain as long would exceed MAX_DEPTH):
# _TERMS sums of a broadcast where() and _MODS % each, _TERMS * (_MODS + 2) - 1 operations
_TERMS = 5
_MODS = (MAX_OPERATIONS + 1) // _TERMS - 2
REJECTED, FAILED, VALUE = "rejected", "failed when evaluating", "value"

PATHOLOGICAL = {
    "power-tower-literal": ("2**2**2**2**99", REJECTED),
    "power-tower-runtime": ("2**2**2**2**2**2", FAILED),
    "power-of-powers": ("10**10**10", FAILED),
    "nested-integer-powers": ("((9**64)**64)**64", FAILED),
    "float-overflow": ("1e308*1e308", VALUE),
    "float-power-overflow": ("1e308**2", FAILED),
    "negative-fractional-power": ("(-8)**0.5", FAILED),
    "array-power": ("met**64 + n_jets**64", VALUE),
    "long-integer": ("9" * MAX_SOURCE_LENGTH, VALUE),
    "long-integer-times-array": ("met * " + "9" * (MAX_SOURCE_LENGTH - 6), FAILED),
    "long-hex": ("0x" + "f" * (MAX_SOURCE_LENGTH - 2), VALUE),
    "long-float": ("0." + "9" * (MAX_SOURCE_LENGTH - 2), VALUE),
    "string": ("'" + "a" * (MAX_SOURCE_LENGTH - 2) + "'", REJECTED),
    "giant-string": ("'" + "a" * 10**6 + "'", REJECTED),
    "string-product": ("'a' * 10**9", REJECTED),
    "parentheses": ("(" * 5000 + "met" + ")" * 5000, REJECTED),
    "brackets": ("[" * 5000 + "]" * 5000, REJECTED),
    "unary-minus": ("-" * (MAX_SOURCE_LENGTH - 3) + "met", REJECTED),
    "not": ("not " * (MAX_SOURCE_LENGTH // 4 - 1) + "met", REJECTED),
    "invert": ("~" * (MAX_SOURCE_LENGTH - 5) + "tight", REJECTED),
    "nested-calls": ("abs(" * 300 + "met" + ")" * 300, REJECTED),
    "nested-lambdas": ("lambda:" * 280 + "1", REJECTED),
    "jagged-comparison-chain": (_longest("jet_pt", "<"), REJECTED),
    "jagged-and-chain": (_longest("jet_tag", " and "), REJECTED),
    "jagged-where": (_longest("where(jet_pt>met,jet_pt,met)", "+"), REJECTED),
    "broadcast-where": (_longest("where(jet_tag,met,eta)", " or "), REJECTED),
    "reductions": (_longest("max(jet_pt)*count(jet_tag)", "+"), REJECTED),
    # the most operations allowed, each among the slowest on jagged arrays (a broadcast)
    "operations-at-limit": (
        " + ".join([f"(where(jet_tag,met,eta){' % met' * _MODS})"] * _TERMS),
        VALUE,
    ),
    "broadcasts-at-limit": (" or ".join(["where(jet_tag,met,eta)"] * (MAX_OPERATIONS // 2)), VALUE),
    "operations-over-limit": (" and ".join(["jet_pt > met"] * MAX_OPERATIONS), REJECTED),
    "division-by-zero": ("1/0 + 1//0 + 1%0 + 0**-1", FAILED),
    "huge-int-with-array": ("n_jets + 10**60", FAILED),
    "overlong": ("met + " * 10**5 + "met", REJECTED),
}


@pytest.mark.parametrize(("source", "outcome"), PATHOLOGICAL.values(), ids=list(PATHOLOGICAL))
@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
def test_pathological_inputs_end_quickly(source: str, outcome: str, strict: bool) -> None:
    """Exponent towers, deep nesting, huge literals and long chains: bounded time and memory,
    and the expected outcome (rejected when parsing, failed when evaluating, or a value)."""
    assert check(source, strict=strict).startswith(outcome)
