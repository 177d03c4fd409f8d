"""The one filter layer: which leaves a transformation acts on, and what each leaf is called.

Every part of toolkit that differentiates, steps or checks a pytree asks the
same two questions, and this module is the only place that answers them:

* **Which leaves?** :func:`is_array` (any array), :func:`is_inexact` (floating
  and complex numbers and arrays: what JAX differentiates) and
  :func:`is_operand` (what JAX must see as a value rather than a Python
  constant). :func:`partition` splits a tree by such a predicate into two trees
  of the same structure, ``None`` where the other has the leaf; :func:`combine`
  merges them back. (Equinox's ``partition``/``combine``/``is_array`` are the
  model.)
* **What is it called?** :class:`Arguments` names the arguments of a call from
  the function's signature, and :meth:`Arguments.label` turns the key path of a
  leaf of ``(args, kwargs)`` into ``g.a[0]`` or ``factor``, so that every error
  message names the leaf as the user wrote it.

:func:`refuse_opaque` is the check that a differentiated argument holds no
object JAX would silently treat as a constant (an undecorated class instance).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import numbers
import types
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from toolkit._show import describe
from toolkit.cache import Cache

__all__ = [
    "is_array",
    "is_inexact",
    "is_operand",
    "concrete",
    "concrete_array_type",
    "concrete_key_type",
    "all_float_arrays",
    "INEXACT_DTYPES",
    "partition",
    "combine",
    "split",
    "Split",
    "leaves_like",
    "keystr",
    "labelled_leaves",
    "Arguments",
    "refuse_opaque",
    "is_opaque",
    "is_numeric",
    "non_numeric",
    "check_callable",
]

ARRAYS = (jax.Array, np.ndarray, np.generic)


def is_array(leaf: Any) -> bool:
    """True for a JAX or NumPy array or NumPy scalar, of any dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.filters import is_array
        >>> is_array(jnp.arange(3)), is_array(1.0)
        (True, False)
    """
    return isinstance(leaf, ARRAYS)


def is_inexact(leaf: Any) -> bool:
    """True for what JAX can differentiate: floating or complex numbers and arrays.

    Python ints and bools, integer and boolean arrays, PRNG keys, strings, ``None``
    and other objects are not.

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.filters import is_inexact
        >>> is_inexact(jnp.ones(2)), is_inexact(2.0), is_inexact(3), is_inexact(True)
        (True, True, False, False)
    """
    if isinstance(leaf, (bool, int)):
        return False
    if isinstance(leaf, (float, complex)):
        return True
    if not isinstance(leaf, ARRAYS) and not hasattr(leaf, "dtype"):
        return False
    dtype = getattr(leaf, "dtype", None)
    try:
        return dtype is not None and bool(jnp.issubdtype(dtype, jnp.inexact))
    except TypeError:  # a dtype JAX does not know (NumPy object or string arrays)
        return False


def is_operand(leaf: Any) -> bool:
    """True for leaves a transformation must receive as JAX values: arrays (any dtype) and Python floats.

    Python ints, bools, strings, callables and other objects are constants of
    the program (they choose shapes and branches) and stay Python values.

    Example:
        >>> from toolkit.filters import is_operand
        >>> is_operand(2.0), is_operand(2), is_operand("mode")
        (True, False, False)
    """
    return is_array(leaf) or is_inexact(leaf)


def _is_prng_key(leaf: Any) -> bool:
    dtype = getattr(leaf, "dtype", None)
    try:
        return dtype is not None and bool(jnp.issubdtype(dtype, jax.dtypes.prng_key))
    except TypeError:  # a dtype JAX does not know (NumPy object or string arrays)
        return False


def is_numeric(leaf: Any) -> bool:
    """True for numbers and arrays of numbers (booleans, integers, floats, complex), not strings, objects or PRNG keys.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from toolkit.filters import is_numeric
        >>> is_numeric(jnp.arange(2)), is_numeric(True), is_numeric("a"), is_numeric(jax.random.key(0))
        (True, True, False, False)
    """
    if isinstance(leaf, numbers.Number):
        return True
    if not isinstance(leaf, ARRAYS) or _is_prng_key(leaf):
        return False
    return np.dtype(leaf.dtype).kind in "biufcV"  # V: ml_dtypes' bfloat16 and float8 types


def non_numeric(leaf: Any) -> tuple[str, str]:
    """What a leaf that is not a number or an array of numbers is, and how to fix it: ``("a str", "make it ...")``."""
    if _is_prng_key(leaf):
        return (
            f"a PRNG key array ({describe(leaf)})",
            "a key has no numeric value: keep it out of the tree, or pass jax.random.key_data(key) for its bits",
        )
    if isinstance(leaf, ARRAYS):
        return (
            f"a NumPy array of dtype {leaf.dtype} ({describe(leaf)})",
            "convert it to numbers first, e.g. np.asarray(x, dtype=float)",
        )
    if isinstance(leaf, (set, frozenset)):
        return (
            f"a {type(leaf).__name__}",
            "a set is not a pytree: use a list or tuple, or make it a static field (tk.field(static=True))",
        )
    return f"a {type(leaf).__name__}", "make it a static field (tk.field(static=True)) or leave it out of the tree"


def call_signature(f: Callable[..., Any]) -> inspect.Signature | None:
    """``inspect.signature(f)``, or ``None`` for a callable without one (a builtin).

    A plain function's is remembered by its code and the number of its defaults
    (what a call's binding depends on), so a loop that passes a new lambda each
    call inspects it once. Its default *values* are the first function's: show
    ``inspect.signature(f)`` itself in a message.

    Example:
        >>> from toolkit.filters import call_signature
        >>> str(call_signature(lambda key, n=2: key)), call_signature(len) is not None
        ('(key, n=2)', True)
    """
    plain = type(f) is types.FunctionType and not {"__wrapped__", "__signature__"} & f.__dict__.keys()
    key = (f.__code__, len(f.__defaults__ or ()), tuple(f.__kwdefaults__ or ())) if plain else None  # type: ignore[attr-defined]
    if key is not None:
        known = _SIGNATURES.get(key)
        if known is not None:
            return known
    try:
        signature = inspect.signature(f)
    except (TypeError, ValueError):
        return None
    if key is not None:
        _SIGNATURES.put(key, signature)
    return signature


_SIGNATURES: Cache[inspect.Signature] = Cache(256)


def check_callable(caller: str, name: str, value: Any, example: str) -> None:
    """A ``TypeError`` naming the argument unless ``value`` is callable."""
    if not callable(value):
        raise TypeError(f"{caller}: {name} must be a function, such as {example}; got {describe(value)}.")


def concrete(x: Any) -> np.ndarray | None:
    """``x``'s values as a NumPy array, or ``None`` where it has none yet (traced by ``jit``, ``grad`` or ``vmap``).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from toolkit.filters import concrete
        >>> concrete(jnp.ones(2)), bool(jax.jit(lambda x: concrete(x) is None)(1.0))
        (array([1., 1.], dtype=float32), True)
    """
    try:
        return np.asarray(x)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


@functools.cache
def concrete_array_type() -> type:
    """The type of a JAX array that holds values (not a tracer): made on first use, so importing does no device work.

    ``type(x) is concrete_array_type()`` tells a concrete array from a tracer in
    a few nanoseconds, for hot paths that run plain code under transformations.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from toolkit.filters import concrete_array_type
        >>> seen = []
        >>> _ = jax.jit(lambda x: seen.append(type(x) is concrete_array_type()) or x)(1.0)
        >>> type(jnp.ones(2)) is concrete_array_type(), seen
        (True, [False])
    """
    return _concrete_types()[0]


@functools.cache
def _concrete_types() -> tuple[type, type]:
    """A concrete JAX array's type and a typed PRNG key's, made concrete even on first use under a trace (where
    ``jnp.zeros`` alone makes a tracer), and kept."""
    with jax.ensure_compile_time_eval():
        return type(jnp.zeros(())), type(jax.random.key(0))


def concrete_key_type() -> type:
    """The type of a typed PRNG key that holds values (``jax.random.key(0)``), as :func:`concrete_array_type`.

    Example:
        >>> import jax
        >>> from toolkit.filters import concrete_key_type
        >>> type(jax.random.key(1)) is concrete_key_type()
        True
    """
    return _concrete_types()[1]


INEXACT_DTYPES = frozenset(map(np.dtype, ("float16", "bfloat16", "float32", "float64", "complex64", "complex128")))


def all_float_arrays(leaves: list[Any]) -> bool:
    """Whether every leaf is a concrete JAX array of a floating or complex dtype, strongly typed: the usual
    parameters, for which splitting into float and other leaves has nothing to do (checked in a few ns a leaf).

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.filters import all_float_arrays
        >>> all_float_arrays([jnp.ones(2), jnp.zeros(3)]), all_float_arrays([jnp.ones(2), 3]), all_float_arrays([])
        (True, False, False)
    """
    concrete = concrete_array_type()
    return bool(leaves) and all(
        type(leaf) is concrete and leaf.dtype in INEXACT_DTYPES and not leaf.weak_type for leaf in leaves
    )


def partition(tree: Any, predicate: Callable[[Any], bool] = is_inexact) -> tuple[Any, Any]:
    """Split ``tree`` into two trees of its structure: the leaves that pass ``predicate``, and the rest.

    Each tree holds ``None`` where the other holds a leaf; :func:`combine` undoes it.

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.filters import partition
        >>> partition((jnp.ones(2), 3))
        ((Array([1., 1.], dtype=float32), None), (None, 3))
    """
    check_callable("tk.tree.partition", "predicate", predicate, "tk.tree.is_differentiable (leaf -> bool)")
    leaves, treedef = jax.tree.flatten(tree)
    chosen = [bool(predicate(leaf)) for leaf in leaves]
    kept = [leaf if c else None for leaf, c in zip(leaves, chosen)]
    rest = [None if c else leaf for leaf, c in zip(leaves, chosen)]
    return jax.tree.unflatten(treedef, kept), jax.tree.unflatten(treedef, rest)


def combine(*trees: Any) -> Any:
    """Merge trees made by :func:`partition`: at each leaf, the first value that is not ``None``.

    Example:
        >>> from toolkit.filters import combine
        >>> combine((1.0, None), (None, 3))
        (1.0, 3)
    """

    def first(*leaves: Any) -> Any:
        return next((leaf for leaf in leaves if leaf is not None), None)

    def is_hole(leaf: Any) -> bool:
        return leaf is None

    if not trees:
        raise TypeError(
            "tk.tree.combine: no trees given; pass the trees tk.tree.partition made: "
            "tk.tree.combine(*tk.tree.partition(tree))."
        )
    structure = jax.tree.structure(trees[0], is_leaf=is_hole)
    for i, other in enumerate(trees[1:], start=2):
        if jax.tree.structure(other, is_leaf=is_hole) != structure:
            raise ValueError(
                f"tk.tree.combine: tree {i} does not have the structure of tree 1 (None standing for a leaf):\n"
                f"  {structure}\n  {jax.tree.structure(other, is_leaf=is_hole)}\n"
                f"combine merges trees of one structure, as tk.tree.partition makes them."
            )
    return jax.tree.map(first, *trees, is_leaf=is_hole)


@dataclasses.dataclass(frozen=True)
class Split:
    """How to rebuild a tree from the leaves :func:`split` chose; the other leaves are kept here.

    Unlike :func:`partition`, nothing is ever put in the user's pytree nodes in
    place of a leaf, so nodes whose unflatten refuses ``None`` work too.
    """

    treedef: Any
    chosen: tuple[bool, ...]
    others: tuple[Any, ...]

    def rebuild(self, kept: list[Any]) -> Any:
        """The tree with ``kept`` (one value per chosen leaf, in order) where the chosen leaves were."""
        kept_iter, others_iter = iter(kept), iter(self.others)
        leaves = [next(kept_iter) if c else next(others_iter) for c in self.chosen]
        return jax.tree.unflatten(self.treedef, leaves)


def split(tree: Any, predicate: Callable[[Any], bool] = is_inexact) -> tuple[list[Any], Split]:
    """The leaves of ``tree`` that pass ``predicate``, as a flat list, and the :class:`Split` that puts them back.

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.filters import split
        >>> kept, how = split({"w": jnp.ones(2), "n": 3})
        >>> kept, how.rebuild([jnp.zeros(2)])
        ([Array([1., 1.], dtype=float32)], {'n': 3, 'w': Array([0., 0.], dtype=float32)})
    """
    leaves, treedef = jax.tree.flatten(tree)
    chosen = tuple(bool(predicate(leaf)) for leaf in leaves)
    kept = [leaf for leaf, c in zip(leaves, chosen) if c]
    others = tuple(leaf for leaf, c in zip(leaves, chosen) if not c)
    return kept, Split(treedef, chosen, others)


def leaves_like(structure: Any, other: Any) -> list[Any] | None:
    """``other`` flattened up to the tree ``structure`` (a treedef), or ``None`` if it does not have that structure.

    Where ``structure`` has a leaf, ``other`` may hold any subtree (``None`` included).

    Example:
        >>> import jax
        >>> from toolkit.filters import leaves_like
        >>> structure = jax.tree.structure({"w": 1.0, "n": 2})
        >>> leaves_like(structure, {"w": 0.5, "n": None}), leaves_like(structure, [0.5])
        ([None, 0.5], None)
    """
    try:
        return structure.flatten_up_to(other)
    except (ValueError, TypeError):
        return None


def keystr(path: tuple[Any, ...], root: str = "") -> str:
    """``root`` followed by the key path as Python would index it (``.a[0]['k']``); ``root`` or "the root" alone.

    Example:
        >>> import jax
        >>> from toolkit.filters import keystr
        >>> keystr((jax.tree_util.DictKey("w"), jax.tree_util.SequenceKey(1)), "params")
        "params['w'][1]"
    """
    return (root + jax.tree_util.keystr(tuple(path))) or "the root"


def labelled_leaves(tree: Any, root: str = "") -> list[tuple[str, Any]]:
    """Every leaf of ``tree`` with its label (see :func:`keystr`), in flattening order.

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.filters import labelled_leaves
        >>> [label for label, _ in labelled_leaves({"w": jnp.ones(2), "b": 0.0}, "params")]
        ["params['b']", "params['w']"]
    """
    return [(keystr(path, root), leaf) for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]]


def _positional_names(signature: inspect.Signature, bound: inspect.BoundArguments) -> list[str]:
    names = []
    for parameter in signature.parameters.values():
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            names.append(parameter.name)
        elif parameter.kind is parameter.VAR_POSITIONAL:
            extra = bound.arguments.get(parameter.name, ())
            names.extend(f"{parameter.name}[{k}]" for k in range(len(extra)))
    return names


@dataclasses.dataclass(frozen=True)
class Arguments:
    """The positional and keyword arguments of one call, each with the name the user knows it by.

    ``names[i]`` names ``args[i]``: the parameter's name where the function has a
    signature that accepts the call, ``args[i]`` otherwise. Keyword arguments are
    named by their keys. The pytree of the call is ``(args, kwargs)``.
    """

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    names: tuple[str, ...]

    @classmethod
    def of(cls, f: Any, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None) -> Arguments:
        """The call ``f(*args, **kwargs)`` as given, named from ``f``'s signature where it has one.

        Example:
            >>> from toolkit.filters import Arguments
            >>> Arguments.of(lambda x, *rest: x, (1.0, 2.0, 3.0)).names
            ('x', 'rest[0]', 'rest[1]')
        """
        kwargs = dict(kwargs or {})
        try:
            signature = inspect.signature(f)
            bound = signature.bind(*args, **kwargs)
        except (TypeError, ValueError):
            return cls(tuple(args), kwargs, tuple(f"args[{i}]" for i in range(len(args))))
        names = _positional_names(signature, bound)[: len(args)]
        names += [f"args[{i}]" for i in range(len(names), len(args))]
        return cls(tuple(args), kwargs, tuple(names))

    @classmethod
    def bound(cls, signature: inspect.Signature, bound: inspect.BoundArguments) -> Arguments:
        """A call already bound to ``signature``, defaults applied: every positional parameter is in ``args``."""
        names = _positional_names(signature, bound)[: len(bound.args)]
        return cls(tuple(bound.args), dict(bound.kwargs), tuple(names))

    @property
    def tree(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return self.args, self.kwargs

    def label(self, path: tuple[Any, ...]) -> str:
        """The name of the leaf at ``path`` in :attr:`tree`, e.g. ``g.a`` or ``factor['w']``."""
        group, key, *rest = path
        head = self.names[key.idx] if group.idx == 0 else str(key.key)
        return keystr(tuple(rest), head)

    def labelled_leaves(self) -> list[tuple[str, Any]]:
        """Every leaf of the call with its name."""
        return [(self.label(path), leaf) for path, leaf in jax.tree_util.tree_flatten_with_path(self.tree)[0]]


# Leaves that are plainly not data: passed through a transformation untouched, never an error.
_PASSIVE = (
    str,
    bytes,
    numbers.Number,
    type,
    enum.Enum,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.ModuleType,
    type(Ellipsis),
    slice,
)


def is_opaque(leaf: Any) -> bool:
    """True for an object JAX cannot look inside that is not plainly a constant (see :func:`refuse_opaque`)."""
    return not (is_array(leaf) or isinstance(leaf, _PASSIVE) or callable(leaf))


def refuse_opaque(caller: str, labelled: list[tuple[str, Any]]) -> None:
    """A ``TypeError`` if a leaf is an object JAX cannot look inside (and so would never differentiate).

    An instance of a plain class or dataclass is a single opaque leaf to JAX:
    its arrays would silently get no gradient. Numbers, arrays, strings,
    callables, classes and enum members are fine.
    """
    for label, leaf in labelled:
        if not is_opaque(leaf):
            continue
        if isinstance(leaf, (set, frozenset)):
            raise TypeError(
                f"{caller}: {label} is a {type(leaf).__name__}, which JAX sees as one opaque value (a set is not a "
                f"pytree), so its elements would get no gradient. Pass a list or tuple instead."
            )
        kind = "dataclass" if dataclasses.is_dataclass(leaf) else "class"
        name = type(leaf).__name__
        raise TypeError(
            f"{caller}: {label} is a {name}, a plain {kind} instance that JAX sees as one opaque value, "
            f"so its fields would get no gradient. Decorate the class with @tk.struct:\n"
            f"  @tk.struct\n  class {name}:\n      ...\n"
            f"(or register it with jax.tree_util.register_dataclass), or pass its arrays directly."
        )
