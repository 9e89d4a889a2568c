"""Safe, element-wise evaluation of the cut and weight expressions written in config files.

Physicists write selections and weights as strings in the configuration YAML, for example
``"pt > 20 and abs(eta) < 2.4 and tightId"`` or ``"genWeight * 1.2"``. This module turns such
a string into an :class:`Expression` that is evaluated element-wise on numpy or awkward
(also jagged) arrays. User text is never handed to ``eval``, ``exec`` or ``compile``: it is
parsed once with :func:`ast.parse`, every node of the tree is checked against a whitelist,
and the validated tree is turned into a tree of small Python closures.

The language is a small subset of Python expressions:

* numeric and boolean constants (no strings, bytes, ``None``, complex numbers or ``...``);
* variable names, which must not start with ``_``; with ``allowed_names`` only those names;
* arithmetic ``+ - * / // % **``, unary ``-``/``+``, and the bitwise ``& | ^ ~``;
* comparisons ``== != < <= > >=``, chained ones included: ``0 < x <= 3`` means
  ``(0 < x) & (x <= 3)``;
* ``and``, ``or`` and ``not``, which act element-wise like ``numpy.logical_and``,
  ``numpy.logical_or`` and ``numpy.logical_not`` (so both sides are always evaluated);
* calls by bare name, with positional arguments only, to the functions in
  :data:`FUNCTIONS`: numpy ufuncs (which dispatch to awkward for awkward arrays) and the
  reductions ``count``, ``any``, ``all``, ``sum``, ``max`` and ``min``, which reduce the last
  (innermost) axis with awkward, e.g. ``[event][jet] -> [event]``.

Semantics worth knowing:

* ``count(x)`` gives the number of entries per list, except for a boolean ``x``, where it
  gives the number of ``True`` entries: ``count(jet_pt > 30) >= 2``.
* ``max``/``min`` of an empty list is :data:`EMPTY_EXTREMUM_FILL` (NaN): every comparison
  with NaN is False, so an event without entries fails any cut on its ``max``/``min``.
  ``sum``, ``any`` and ``all`` of an empty list are 0, False and True.
* ``~`` and ``not`` use numpy, so ``~flag`` of a plain Python bool is its negation, not the
  integer ``-2``.
* As in Python, ``&`` and ``|`` bind more tightly than comparisons: write
  ``(a > 1) & (b < 2)``, or use ``and``.

Resource limits: the source may hold at most :data:`MAX_SOURCE_LENGTH` characters, the
syntax tree at most :data:`MAX_DEPTH` levels and :data:`MAX_OPERATIONS` array operations,
and an exponent at most :data:`MAX_POWER_EXPONENT` in absolute value (checked for literal
exponents when parsing and for scalar exponents when evaluating, where Python integer
powers are also capped at :data:`MAX_INTEGER_POWER_BITS` bits). A power of two scalars
that would be a complex number (``(-8) ** 0.5``) is an error.
"""

from __future__ import annotations

import ast
import difflib
import functools
import logging
import math
import numbers
import operator
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import awkward as ak
import numpy as np

from thetaflow.core.errors import ConfigError, ThetaflowError

logger = logging.getLogger(__name__)

#: Longest accepted expression, in characters (after stripping surrounding whitespace).
MAX_SOURCE_LENGTH = 2000
#: Deepest accepted syntax tree, counted in nodes from the top of the expression.
MAX_DEPTH = 64
#: Most array operations in one expression: every operator, comparison and function call,
#: and every ``and``/``or`` joining two operands (chained comparisons join theirs with ``and``).
#: Bounds the evaluation time: on 10^5 jagged events, one of the slowest operations (a flat
#: column broadcast into a jagged one) takes ~10 ms. The largest cut in config/ has 10; a
#: region selection of a real analysis may have a few dozen.
MAX_OPERATIONS = 64
#: Largest accepted absolute value of an exponent in ``**``.
MAX_POWER_EXPONENT = 64
#: Largest accepted size, in bits, of a power of two Python integers.
MAX_INTEGER_POWER_BITS = 65536
#: What ``max``/``min`` give for an empty list.
EMPTY_EXTREMUM_FILL = math.nan

_MAX_LISTED_NAMES = 20
_MAX_QUOTED_CHARS = 120

_Evaluator = Callable[[Mapping[str, Any]], Any]
#: Where Python's tokenizer breaks lines, which syntax-tree line numbers count
#: (``str.splitlines`` also breaks at ``\x0c``, ``\x1c``, ``\u2028``...).
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class ExpressionError(ThetaflowError, ValueError):
    """An expression that cannot be parsed, is not allowed, or failed to evaluate.

    The message names the config ``context`` (when given), the expression, the position of
    the offending construct (1-based line and column, when known) and what is wrong.

    Attributes:
        detail: What is wrong, without the location.
        source: The expression text.
        context: Where the expression comes from, e.g. ``"selection.cuts[2].expr"``.
        construct: The source text of the offending construct, when known.
        line: 1-based line of the offending construct, when known.
        column: 1-based column of the offending construct, when known.
    """

    def __init__(
        self,
        detail: str,
        source: str = "",
        context: str = "",
        construct: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        """Build the message from its parts.

        Args:
            detail: What is wrong, without the location.
            source: The expression text.
            context: Where the expression comes from (a config key), or "".
            construct: The source text of the offending construct, if known.
            line: 1-based line of the offending construct, if known.
            column: 1-based column of the offending construct, if known.
        """
        self.detail = detail
        self.source = source
        self.context = context
        self.construct = construct
        self.line = line
        self.column = column
        prefix = f"{context}: " if context else ""
        subject = f"expression {_quote(source)}" if source else "expression"
        location = ""
        if column is not None:
            location = (
                f" at line {line}, column {column}" if line and line > 1 else f" at column {column}"
            )
        super().__init__(f"{prefix}{subject}{location}: {detail}")

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by the parts of the message, so the message survives a round trip."""
        return (
            type(self),
            (self.detail, self.source, self.context, self.construct, self.line, self.column),
        )


@dataclass(frozen=True)
class Expression:
    """A validated expression, ready to be evaluated on arrays.

    Build it with :func:`parse_expression`. It pickles by re-parsing its source.

    Attributes:
        source: The expression text, stripped of surrounding whitespace.
        names: The variable names the expression reads.
        context: Where the expression comes from (a config key), used in error messages.
        functions: The functions the expression calls.
    """

    source: str
    names: frozenset[str]
    context: str = field(default="", compare=False)
    functions: frozenset[str] = field(default=frozenset(), compare=False)
    _evaluator: _Evaluator = field(kw_only=True, repr=False, compare=False)

    def evaluate(self, namespace: Mapping[str, Any]) -> Any:
        """Evaluate the expression element-wise on the arrays of ``namespace``.

        Args:
            namespace: Maps each name in :attr:`names` to a numpy or awkward array or a
                scalar. To evaluate on an awkward record array ``events``, pass
                ``{name: events[name] for name in expression.names}``.

        Returns:
            The result of the array operations: a numpy or awkward array, or a scalar.

        Raises:
            ExpressionError: A name is missing from ``namespace`` (the message lists the
                available names), or an array operation failed.
        """
        missing = sorted(name for name in self.names if name not in namespace)
        if missing:
            raise ExpressionError(
                _unknown_names_message(missing, namespace, "available"), self.source, self.context
            )
        try:
            return self._evaluator(namespace)
        except Exception as exc:  # any failure of the array code becomes a user-facing error
            raise ExpressionError(
                f"evaluation failed with {type(exc).__name__}: {exc}", self.source, self.context
            ) from exc

    @property
    def reduces(self) -> bool:
        """Whether the expression reduces a list axis (``count``, ``max``...): such an
        expression needs the jagged structure, not just flat per-object values."""
        return bool(self.functions & REDUCTIONS)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by source and context; the closures are rebuilt by re-parsing."""
        return (functools.partial(parse_expression, context=self.context), (self.source,))


def parse_expression(
    source: str, *, allowed_names: Collection[str] | None = None, context: str = ""
) -> Expression:
    """Parse and validate an expression string.

    Args:
        source: The expression, e.g. ``"pt > 20 and abs(eta) < 2.4"``. Surrounding
            whitespace is ignored.
        allowed_names: If given, the only variable names the expression may read.
        context: Where the expression comes from, e.g. ``"selection.cuts[2].expr"``;
            it is named in every error message.

    Returns:
        The validated expression.

    Raises:
        ExpressionError: ``source`` is not a string, is empty, too long or too deeply
            nested, has a syntax error, or uses a construct, name or function that is not
            allowed. The message names the construct and its column.
        TypeError: ``allowed_names`` is a single string instead of a collection of names.
    """
    if isinstance(allowed_names, str):
        raise TypeError("allowed_names must be a collection of names, not a string")
    if not isinstance(source, str):
        raise ExpressionError(
            f"an expression must be a string, got {type(source).__name__} {_quote(repr(source))}",
            context=context,
        )
    text = source.strip()
    if not text:
        raise ExpressionError("the expression is empty", context=context)
    if len(text) > MAX_SOURCE_LENGTH:
        raise ExpressionError(
            f"the expression is too long ({len(text)} characters; "
            f"the limit is {MAX_SOURCE_LENGTH})",
            text,
            context,
        )
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(
            f"syntax error: {exc.msg}", text, context, line=exc.lineno, column=exc.offset
        ) from exc
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ExpressionError(f"cannot parse: {exc}", text, context) from exc
    builder = _ClosureBuilder(
        text, context, None if allowed_names is None else frozenset(allowed_names)
    )
    evaluator = builder.build(tree.body, depth=1)
    names = frozenset(builder.names)
    logger.debug("parsed expression %r reading %s", text, sorted(names))
    return Expression(text, names, context, frozenset(builder.functions), _evaluator=evaluator)


class _Function(NamedTuple):
    """A callable allowed in expressions and the number of arguments it takes."""

    implementation: Callable[..., Any]
    arity: int


def _is_boolean(values: Any) -> bool:
    """Whether the innermost values of a numpy or awkward array are booleans."""
    layout = ak.to_layout(values)
    while not isinstance(layout, ak.contents.NumpyArray):
        if not hasattr(layout, "content"):  # records, unions, empty arrays
            return False
        layout = layout.content
    return layout.dtype == np.bool_


def _count(values: Any) -> Any:
    """Entries per list along the last axis, or the number of True entries of a mask."""
    if _is_boolean(values):
        return ak.sum(values, axis=-1)
    return ak.num(values, axis=-1)


def _extremum(reducer: Callable[..., Any]) -> Callable[[Any], Any]:
    """Wrap ``ak.max``/``ak.min`` to reduce the last axis, empty lists giving NaN."""

    def reduce_last_axis(values: Any) -> Any:
        result = reducer(values, axis=-1)
        if result is None:
            return EMPTY_EXTREMUM_FILL
        if isinstance(result, ak.Array):
            return ak.fill_none(result, EMPTY_EXTREMUM_FILL)
        return result

    return reduce_last_axis


def _reduce_last_axis(reducer: Callable[..., Any]) -> Callable[[Any], Any]:
    """Wrap an awkward reducer to reduce the last axis."""
    return functools.partial(reducer, axis=-1)


#: The functions an expression may call, by name, with their number of arguments.
FUNCTIONS: Mapping[str, _Function] = {
    "abs": _Function(np.abs, 1),
    "sqrt": _Function(np.sqrt, 1),
    "exp": _Function(np.exp, 1),
    "log": _Function(np.log, 1),
    "log10": _Function(np.log10, 1),
    "sin": _Function(np.sin, 1),
    "cos": _Function(np.cos, 1),
    "tan": _Function(np.tan, 1),
    "arcsin": _Function(np.arcsin, 1),
    "arccos": _Function(np.arccos, 1),
    "arctan": _Function(np.arctan, 1),
    "arctan2": _Function(np.arctan2, 2),
    "sinh": _Function(np.sinh, 1),
    "cosh": _Function(np.cosh, 1),
    "tanh": _Function(np.tanh, 1),
    "minimum": _Function(np.minimum, 2),
    "maximum": _Function(np.maximum, 2),
    "where": _Function(np.where, 3),
    "isfinite": _Function(np.isfinite, 1),
    "hypot": _Function(np.hypot, 2),
    "floor": _Function(np.floor, 1),
    "ceil": _Function(np.ceil, 1),
    "count": _Function(_count, 1),
    "any": _Function(_reduce_last_axis(ak.any), 1),
    "all": _Function(_reduce_last_axis(ak.all), 1),
    "sum": _Function(_reduce_last_axis(ak.sum), 1),
    "max": _Function(_extremum(ak.max), 1),
    "min": _Function(_extremum(ak.min), 1),
}


#: The functions that reduce the innermost list axis.
REDUCTIONS = frozenset({"count", "any", "all", "sum", "max", "min"})


def _checked_power(base: Any, exponent: Any) -> Any:
    """``base ** exponent``, refusing scalar exponents or integer results that are too large."""
    # typeshed's numbers stub gives abs() of a Real a protocol type without ordering
    if isinstance(exponent, numbers.Real) and abs(exponent) > MAX_POWER_EXPONENT:  # type: ignore[operator]
        raise OverflowError(f"exponent {exponent!r} exceeds the limit of {MAX_POWER_EXPONENT}")
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and base.bit_length() * abs(exponent) > MAX_INTEGER_POWER_BITS
    ):
        raise OverflowError(f"integer power exceeds the limit of {MAX_INTEGER_POWER_BITS} bits")
    result = base**exponent
    if isinstance(result, complex):  # a negative Python scalar to a fractional power
        raise ValueError(f"{base!r} ** {exponent!r} is a complex number")
    return result


_UNARY_OPERATORS: Mapping[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Not: np.logical_not,
    ast.Invert: np.invert,
}

_BINARY_OPERATORS: Mapping[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: _checked_power,
    ast.BitAnd: operator.and_,
    ast.BitOr: operator.or_,
    ast.BitXor: operator.xor,
}

_FORBIDDEN_BINARY_OPERATORS: Mapping[type[ast.operator], str] = {
    ast.MatMult: "@",
    ast.LShift: "<<",
    ast.RShift: ">>",
}

_COMPARISONS: Mapping[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}

_FORBIDDEN_COMPARISONS: Mapping[type[ast.cmpop], str] = {
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}

_FORBIDDEN_CONSTRUCTS: Mapping[type[ast.AST], str] = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscripting (indexing)",
    ast.Slice: "slicing",
    ast.Lambda: "a lambda",
    ast.ListComp: "a list comprehension",
    ast.SetComp: "a set comprehension",
    ast.DictComp: "a dict comprehension",
    ast.GeneratorExp: "a generator expression (comprehension)",
    ast.JoinedStr: "an f-string",
    ast.FormattedValue: "an f-string",
    ast.NamedExpr: "an assignment expression (walrus operator ':=')",
    ast.IfExp: "a conditional expression ('a if cond else b')",
    ast.Starred: "a starred argument",
    ast.List: "a list literal",
    ast.Tuple: "a tuple literal",
    ast.Set: "a set literal",
    ast.Dict: "a dict literal",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
}

_FORBIDDEN_HINTS: Mapping[type[ast.AST], str] = {
    ast.IfExp: "; use where(cond, a, b) instead",
}

_CONSTANT_KINDS: Mapping[type, str] = {
    str: "string",
    bytes: "bytes",
    type(None): "None",
    complex: "complex-number",
    type(...): "Ellipsis",
}


class _ClosureBuilder:
    """Validates a syntax tree and turns it into closures over a namespace."""

    def __init__(self, source: str, context: str, allowed_names: frozenset[str] | None) -> None:
        self._source = source
        self._lines = _LINE_BREAK.split(source)
        self._context = context
        self._allowed_names = allowed_names
        self.names: set[str] = set()
        self.functions: set[str] = set()
        self._operations = 0
        self._handlers: Mapping[type[ast.AST], Callable[[Any, int], _Evaluator]] = {
            ast.Constant: self._constant,
            ast.Name: self._name,
            ast.UnaryOp: self._unary,
            ast.BinOp: self._binary,
            ast.BoolOp: self._boolean,
            ast.Compare: self._compare,
            ast.Call: self._call,
        }

    def build(self, node: ast.AST, depth: int) -> _Evaluator:
        """Validate ``node`` (at nesting ``depth``) and return its evaluator."""
        if depth > MAX_DEPTH:
            raise self._error(
                f"the expression is nested too deeply (more than {MAX_DEPTH} levels)", node
            )
        handler = self._handlers.get(type(node))
        if handler is None:
            description = _FORBIDDEN_CONSTRUCTS.get(
                type(node), f"the construct {type(node).__name__}"
            )
            hint = _FORBIDDEN_HINTS.get(type(node), "")
            raise self._error(f"{description} is not allowed{hint}", node)
        return handler(node, depth + 1)

    def _count_operations(self, count: int, node: ast.AST) -> None:
        """Add the ``count`` array operations of ``node``, refusing more than the limit.

        Called after the operands are built, so that a too deep tree is named as such.
        """
        self._operations += count
        if self._operations > MAX_OPERATIONS:
            raise self._error(
                f"the expression has too many operations (more than {MAX_OPERATIONS})", node
            )

    def _error(self, detail: str, node: ast.AST) -> ExpressionError:
        """An error about ``node``, quoting its source text and position."""
        segment = ast.get_source_segment(self._source, node)
        line = getattr(node, "lineno", None)
        offset = getattr(node, "col_offset", None)  # set together with lineno
        column = None
        if line is not None and offset is not None:
            # col_offset counts UTF-8 bytes; report characters, 1-based.
            column = len(self._lines[line - 1].encode()[:offset].decode(errors="replace")) + 1
        if segment is not None:
            detail = f"{detail} (found {_quote(segment)})"
        return ExpressionError(detail, self._source, self._context, segment, line, column)

    def _constant(self, node: ast.Constant, depth: int) -> _Evaluator:
        value = node.value
        if type(value) not in (bool, int, float):
            kind = _CONSTANT_KINDS.get(type(value), type(value).__name__)
            raise self._error(
                f"{kind} constants are not allowed; only numbers and True/False are", node
            )
        return lambda namespace: value

    def _name(self, node: ast.Name, depth: int) -> _Evaluator:
        name = node.id
        if name.startswith("_"):
            raise self._error(
                f"the name {name!r} is not allowed: names starting with '_' are reserved", node
            )
        if self._allowed_names is not None and name not in self._allowed_names:
            raise self._error(_unknown_names_message([name], self._allowed_names, "allowed"), node)
        self.names.add(name)
        return operator.itemgetter(name)

    def _unary(self, node: ast.UnaryOp, depth: int) -> _Evaluator:
        function = _UNARY_OPERATORS[type(node.op)]
        operand = self.build(node.operand, depth)
        self._count_operations(1, node)
        return lambda namespace: function(operand(namespace))

    def _binary(self, node: ast.BinOp, depth: int) -> _Evaluator:
        symbol = _FORBIDDEN_BINARY_OPERATORS.get(type(node.op))
        if symbol is not None:
            raise self._error(f"the operator {symbol!r} is not allowed", node)
        if isinstance(node.op, ast.Pow):
            self._check_literal_exponent(node)
        function = _BINARY_OPERATORS[type(node.op)]
        left = self.build(node.left, depth)
        right = self.build(node.right, depth)
        self._count_operations(1, node)
        return lambda namespace: function(left(namespace), right(namespace))

    def _check_literal_exponent(self, node: ast.BinOp) -> None:
        """Reject ``x ** N`` where ``N`` is a literal number above the exponent limit."""
        exponent = node.right
        if isinstance(exponent, ast.UnaryOp) and isinstance(exponent.op, (ast.USub, ast.UAdd)):
            exponent = exponent.operand
        if not isinstance(exponent, ast.Constant):
            return
        value = exponent.value
        # a number literal, not True/False (bool is an int subclass)
        if (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and abs(value) > MAX_POWER_EXPONENT
        ):
            raise self._error(
                f"the exponent {value!r} is too large (the limit is {MAX_POWER_EXPONENT})",
                node,
            )

    def _boolean(self, node: ast.BoolOp, depth: int) -> _Evaluator:
        function = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        operands = [self.build(value, depth) for value in node.values]
        self._count_operations(len(node.values) - 1, node)
        return lambda namespace: functools.reduce(
            function, (operand(namespace) for operand in operands)
        )

    def _compare(self, node: ast.Compare, depth: int) -> _Evaluator:
        for op in node.ops:
            symbol = _FORBIDDEN_COMPARISONS.get(type(op))
            if symbol is not None:
                raise self._error(
                    f"the comparison {symbol!r} is not allowed; use == != < <= > >=", node
                )
        functions = [_COMPARISONS[type(op)] for op in node.ops]
        operands = [self.build(operand, depth) for operand in (node.left, *node.comparators)]
        self._count_operations(2 * len(node.ops) - 1, node)

        def compare(namespace: Mapping[str, Any]) -> Any:
            values = [operand(namespace) for operand in operands]
            pairs = (
                function(a, b)
                for function, a, b in zip(functions, values, values[1:], strict=False)
            )
            return functools.reduce(np.logical_and, pairs)

        return compare

    def _call(self, node: ast.Call, depth: int) -> _Evaluator:
        if node.keywords:
            raise self._error(
                "keyword arguments are not allowed; pass arguments by position", node.keywords[0]
            )
        if not isinstance(node.func, ast.Name):
            # Name what is wrong with the callee itself (e.g. attribute access) when possible.
            self.build(node.func, depth)
            raise self._error(
                "only the allowed functions can be called, by their bare name", node.func
            )
        name = node.func.id
        function = FUNCTIONS.get(name)
        if function is None:
            raise self._error(
                f"the function {name!r} is not allowed; "
                f"allowed functions: {', '.join(sorted(FUNCTIONS))}",
                node.func,
            )
        arguments = [self.build(argument, depth) for argument in node.args]
        if len(arguments) != function.arity:
            raise self._error(
                f"{name}() takes {function.arity} argument(s), got {len(arguments)}", node
            )
        self._count_operations(1, node)
        self.functions.add(name)
        implementation = function.implementation
        return lambda namespace: implementation(*(argument(namespace) for argument in arguments))


def _quote(text: str) -> str:
    """``repr`` of ``text``, shortened in the middle if it is long."""
    if len(text) > _MAX_QUOTED_CHARS:
        half = _MAX_QUOTED_CHARS // 2
        text = f"{text[:half]} ... {text[-half:]}"
    return repr(text)


def _format_names(names: Iterable[Any]) -> str:
    """Sorted, comma-separated names, truncated after a few."""
    ordered = sorted(str(name) for name in names)
    if not ordered:
        return "(none)"
    shown = ", ".join(ordered[:_MAX_LISTED_NAMES])
    hidden = len(ordered) - _MAX_LISTED_NAMES
    return f"{shown}, ... ({hidden} more)" if hidden > 0 else shown


def _unknown_names_message(unknown: list[str], known: Iterable[Any], adjective: str) -> str:
    """Message for names outside ``known``, with close matches and the known names."""
    known_names = [str(name) for name in known]
    described = []
    for name in unknown:
        matches = difflib.get_close_matches(name, known_names, n=1)
        described.append(f"{name!r} (did you mean {matches[0]!r}?)" if matches else repr(name))
    noun = "name" if len(unknown) == 1 else "names"
    return f"unknown {noun} {', '.join(described)}; {adjective} names: {_format_names(known_names)}"


def check_expression(source: str, key: str, names: Iterable[str] | None = None) -> None:
    """Parse a config expression at parse time; a failure is a ConfigError naming ``key``."""
    try:
        parse_expression(source, allowed_names=None if names is None else set(names), context=key)
    except ExpressionError as err:
        raise ConfigError(f"config key '{key}': {err}") from err
