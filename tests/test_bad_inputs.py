"""A sweep of bad inputs over every public function (``toolkit.colour`` and ``tk.safe`` aside).

Each case is a call and what it must give: either a correct value, checked against an
independent oracle (NumPy, or the value worked out by hand), or an error *raised by
toolkit* whose message

* starts with the public name the user called (``tk.gradient:``, ``tk.tree.sum:``,
  ``GG.a:`` for a struct's field, ``sq():`` for an adjoint rule ``sq``),
* names the argument, field or leaf path at fault (``x``, ``params['w']``, ``GG.a``),
* says how to fix it,

and, for every error in the sweep, mentions no toolkit-internal function or module and
no JAX-internal jargon, and comes from a check toolkit made (the innermost frame of the
traceback is in toolkit, not in JAX, NumPy, optax or Python's own machinery). Calls with
the wrong number of arguments are left to Python, whose own ``TypeError`` names the
function and the argument, and errors raised by a user's own function are the user's.

The cases come from compact tables: wrong types (lists, tuples, None, strings, dicts,
sets, objects, classes, functions), empty and mismatched shapes and structures, NaN and
inf (values pass through, nothing is clipped; ``tk.optimise`` stops with "diverged"),
every dtype (float16, bfloat16, float32, float64 with and without x64, integers, bool,
complex, PRNG keys) and bad option values.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import toolkit as tk
from tests.sweep import KEY, Gives, Raises, Sweep, equal, fn, in_x64, key_error_message, satisfies

# Words a message must never contain, besides the sweep's own: toolkit's private names and JAX internals.
FORBIDDEN = [
    r"_Built",
    r"_Call\b",
    r"_Rule\b",
    r"_Split\b",
    r"_Problem\b",
    r"_pullbacks",
    r"\bfilters\.",
    r"run_block",
    r"\bobjective\b",
    r"(?<!\w)_leaf\b",
    r"\bvalues\[\d",
    r"(?<![\w.])_[a-z][a-z_]*\(",
    r"PyTreeRegistry",
    r"flatten\(\): incompatible",
    r"traced for jit",
    r"not a valid JAX type",
]
TOLERANCE = {"float16": 2e-2, "bfloat16": 5e-2, "float32": 2e-5, "float64": 1e-12}
SWEEP = Sweep(forbidden=FORBIDDEN, tolerance=TOLERANCE, message_of=key_error_message)
case = SWEEP.case


# --- oracles --------------------------------------------------------------------------------


def _close_leaf(got: Any, expected: Any, dtype: Any) -> None:
    if expected is None:
        assert got is None, f"expected None, got {got!r}"
        return
    got_dtype = got.dtype if hasattr(got, "dtype") else jnp.asarray(got).dtype  # NumPy arrays keep their own
    got_array = jnp.asarray(got)
    if dtype is not None:
        assert got_dtype == jnp.dtype(dtype), f"dtype {got_dtype}, expected {jnp.dtype(dtype)}"
    kind = got_array.dtype.kind
    if kind in "biu" or got_array.dtype == bool:
        np.testing.assert_array_equal(np.asarray(got_array), expected)
        return
    values = np.asarray(got_array.astype(jnp.float32) if got_array.dtype == jnp.bfloat16 else got_array)
    SWEEP.assert_close(values, expected, jnp.dtype(got_array.real.dtype).name)  # a complex value's by its parts'


def close(expected: Any, dtype: Any = None) -> Gives:
    """The value has ``expected``'s structure; each leaf is close to it (and of ``dtype``, if given)."""

    def check(got: Any) -> None:
        is_none = lambda leaf: leaf is None  # noqa: E731
        got_tree, expected_tree = (
            jax.tree.structure(got, is_leaf=is_none),
            jax.tree.structure(expected, is_leaf=is_none),
        )
        assert got_tree == expected_tree, f"structure {got_tree}, expected {expected_tree}"
        for g, e in zip(jax.tree.leaves(got, is_leaf=is_none), jax.tree.leaves(expected, is_leaf=is_none), strict=True):
            _close_leaf(g, e, dtype)

    return Gives(check)


# --- shared inputs --------------------------------------------------------------------------


class Plain:
    """An undecorated class: JAX sees an instance as one opaque leaf."""

    def __init__(self):
        self.w = jnp.ones(2)


@tk.struct
class GG:
    a: jax.Array
    b: jax.Array
    label: str = tk.field(static=True, default="gg")


X = np.array([0.5, -1.5, 2.0])

# Leaves that are not numbers: (value, what the fix says).
NON_NUMERIC = {
    "str": ("abc", r"static=True"),
    "bytes": (b"ab", r"static=True"),
    "set": ({1.0}, r"static=True|list or tuple"),
    "object": (Plain(), r"static=True|@tk\.struct"),
    "class": (Plain, r"static=True"),
    "function": (fn, r"static=True"),
    "prng-key": (KEY, r"key_data"),
    "object-array": (np.array([1, "a"], dtype=object), r"dtype="),
    "str-array": (np.array(["a", "b"]), r"dtype="),
}

# Containers that are pytrees, with their leaves' values in flattening order.
CONTAINERS = {
    "list": ([1.0, 2.0], [1.0, 2.0]),
    "tuple": ((1.0, 2.0), [1.0, 2.0]),
    "dict": ({"b": 2.0, "a": 1.0}, [1.0, 2.0]),
    "nested": ({"w": [1.0, (2.0,)], "n": None}, [1.0, 2.0]),
    "none": (None, []),
    "empty-list": ([], []),
}

# dtype name -> (make the array from values, values, result dtype of sums/norms, run in x64, floating?)
DTYPES = {
    "float16": (lambda v: jnp.asarray(v, jnp.float16), X, "float16", False, True),
    "bfloat16": (lambda v: jnp.asarray(v, jnp.bfloat16), X, "bfloat16", False, True),
    "float32": (lambda v: jnp.asarray(v, jnp.float32), X, "float32", False, True),
    "float64-numpy-x32": (lambda v: np.asarray(v, np.float64), X, "float32", False, True),
    "float64-x64": (lambda v: jnp.asarray(v, jnp.float64), X, "float64", True, True),
    "int8": (lambda v: jnp.asarray(v, jnp.int8), np.array([1, -2, 3]), "float32", False, False),
    "int32": (lambda v: jnp.asarray(v, jnp.int32), np.array([1, -2, 3]), "float32", False, False),
    "uint8": (lambda v: jnp.asarray(v, jnp.uint8), np.array([1, 2, 3]), "float32", False, False),
    "bool": (lambda v: jnp.asarray(v, bool), np.array([True, False, True]), "float32", False, False),
    "int16": (lambda v: jnp.asarray(v, jnp.int16), np.array([1, -2, 3]), "float32", False, False),
    "uint32": (lambda v: jnp.asarray(v, jnp.uint32), np.array([1, 2, 3]), "float32", False, False),
    "int64-x64": (lambda v: jnp.asarray(v, jnp.int64), np.array([1, -2, 3]), "float64", True, False),
    "complex64": (lambda v: jnp.asarray(v, jnp.complex64), X * (1 + 1j), "complex64", False, True),
    "complex128-x64": (lambda v: jnp.asarray(v, jnp.complex128), X * (1 - 2j), "complex128", True, True),
}


def dtype_call(name: str, f: Callable[[Any], Any]) -> Callable[[], Any]:
    make, values, _, x64, _ = DTYPES[name]
    call = lambda: f(make(values))  # noqa: E731
    return in_x64(call) if x64 else call


def real_dtype(name: str) -> str:
    return {"complex64": "float32", "complex128": "float64"}.get(DTYPES[name][2], DTYPES[name][2])


def dtype_of(name: str, f: Callable[[Any], Any]) -> Any:
    """The dtype plain JAX/NumPy code gives for ``f`` of the dtype ``name``'s array: the dtype oracle."""
    return dtype_call(name, lambda x: f(x).dtype)()


# --- tk.tree: one tree ----------------------------------------------------------------------

TREE_ONE = {
    "sum": (lambda v: np.sum(v), lambda x: tk.tree.sum(x)),
    "mean": (lambda v: np.mean(v), lambda x: tk.tree.mean(x)),
    "norm": (lambda v: np.linalg.norm(np.abs(v)), lambda x: tk.tree.norm(x)),
    "norm-p1": (lambda v: np.sum(np.abs(v)), lambda x: tk.tree.norm(x, 1)),
    "norm-pinf": (lambda v: np.max(np.abs(v), initial=0), lambda x: tk.tree.norm(x, math.inf)),
    "norm-p3": (lambda v: np.sum(np.abs(v) ** 3) ** (1 / 3), lambda x: tk.tree.norm(x, 3)),
}

for dname, (_, values, result, _, floating) in DTYPES.items():
    for fname, (oracle, f) in TREE_ONE.items():
        expected = oracle(values.astype(complex if np.iscomplexobj(values) else float))
        dtype = real_dtype(dname) if fname.startswith("norm") else result
        case(f"tree.{fname}-{dname}", dtype_call(dname, f), close(expected, dtype))
    case(f"tree.size-{dname}", dtype_call(dname, tk.tree.size), equal(3))
    case(
        f"tree.zero-{dname}",
        dtype_call(dname, lambda x: tk.tree.zero({"x": x})),
        close({"x": np.zeros(3)}, dtype_of(dname, jnp.zeros_like)),
    )
    case(f"tree.is_differentiable-{dname}", dtype_call(dname, tk.tree.is_differentiable), equal(floating))
    case(
        f"tree.dot-{dname}",
        dtype_call(dname, lambda x: tk.tree.dot(x, x)),
        close(
            np.vdot(values.astype(complex), values.astype(complex))
            if np.iscomplexobj(values)
            else np.vdot(values.astype(float), values.astype(float)),
            result,
        ),
    )
    case(f"tree.isapprox-self-{dname}", dtype_call(dname, lambda x: tk.tree.isapprox(x, x)), close(True))
    case(
        f"tree.partition-{dname}",
        dtype_call(dname, lambda x: tk.tree.partition((x, 1))),
        close(((values, None), (None, 1)) if floating else ((None, None), (values, 1))),
    )

for cname, (tree, leaves) in CONTAINERS.items():
    v = np.array(leaves, dtype=float)
    case(f"tree.sum-{cname}", lambda tree=tree: tk.tree.sum(tree), close(v.sum()))
    case(f"tree.size-{cname}", lambda tree=tree: tk.tree.size(tree), equal(len(leaves)))
    case(f"tree.norm-{cname}", lambda tree=tree: tk.tree.norm(tree), close(np.linalg.norm(v)))
    case(f"tree.dot-{cname}", lambda tree=tree: tk.tree.dot(tree, tree), close(v @ v))
    case(f"tree.isapprox-{cname}", lambda tree=tree: tk.tree.isapprox(tree, tree), close(True))
    case(f"tree.zero-{cname}", lambda tree=tree: tk.tree.zero(tree), close(jax.tree.map(lambda _: 0.0, tree)))
    if leaves:
        case(f"tree.mean-{cname}", lambda tree=tree: tk.tree.mean(tree), close(v.mean()))
    else:
        case(
            f"tree.mean-{cname}",
            lambda tree=tree: tk.tree.mean(tree),
            Raises(ValueError, r"tk\.tree\.mean", r"no elements", r"at least one element"),
        )

case(
    "tree.mean-empty-array",
    lambda: tk.tree.mean(jnp.zeros((0, 3))),
    Raises(ValueError, r"tk\.tree\.mean", r"no elements", r"at least one element"),
)
for fname, f in {"sum": tk.tree.sum, "size": tk.tree.size, "norm": tk.tree.norm}.items():
    expected = equal(0) if fname == "size" else close(0.0)
    case(f"tree.{fname}-empty-array", lambda f=f: f(jnp.zeros((0, 3))), expected)

# NaN and inf pass through: nothing is clipped, the 2-norm of a NaN is NaN.
SPECIAL = {"nan": [np.nan, 1.0], "inf": [np.inf, 1.0], "-inf": [-np.inf, 1.0], "nan-inf": [np.nan, np.inf]}
for sname, values in SPECIAL.items():
    v = np.array(values)
    with np.errstate(invalid="ignore"):
        oracles = {
            "sum": v.sum(),
            "mean": v.mean(),
            "norm": np.sqrt(np.sum(v * v)),
            "norm-p1": np.abs(v).sum(),
            "norm-pinf": np.nan if np.isnan(v).any() else np.abs(v).max(),
            "dot": v @ v,
        }
    for fname, expected in oracles.items():
        f = TREE_ONE[fname][1] if fname in TREE_ONE else (lambda x: tk.tree.dot(x, x))
        case(f"tree.{fname}-{sname}", lambda f=f, v=v: f(jnp.asarray(v)), close(expected, "float32"))
    same = not np.isnan(v).any()
    case(f"tree.isapprox-{sname}-itself", lambda v=v: tk.tree.isapprox(jnp.asarray(v), jnp.asarray(v)), close(same))
    case(
        f"tree.isapprox-{sname}-itself-nans",
        lambda v=v: tk.tree.isapprox(jnp.asarray(v), jnp.asarray(v), nans=True),
        close(True),
    )
    case(f"tree.isapprox-{sname}-vs-finite", lambda v=v: tk.tree.isapprox(jnp.asarray(v), jnp.ones(2)), close(False))

for kname, (leaf, fix) in NON_NUMERIC.items():
    for fname in ("sum", "mean", "size", "norm", "zero"):
        f = getattr(tk.tree, fname)
        case(
            f"tree.{fname}-{kname}-root",
            lambda f=f, leaf=leaf: f(leaf),
            Raises(TypeError, rf"tk\.tree\.{fname}", r"the root", fix),
        )
        case(
            f"tree.{fname}-{kname}-nested",
            lambda f=f, leaf=leaf: f({"w": jnp.ones(2), "s": [1.0, leaf]}),
            Raises(TypeError, rf"tk\.tree\.{fname}", r"\['s'\]\[1\]", fix),
        )
    for fname in ("dot", "isapprox"):
        f = getattr(tk.tree, fname)
        case(
            f"tree.{fname}-{kname}-in-y",
            lambda f=f, leaf=leaf: f({"w": 1.0, "s": 1.0}, {"w": 1.0, "s": leaf}),
            Raises(TypeError, rf"tk\.tree\.{fname}", r"\['s'\] of y", fix),
        )
    case(f"tree.is_differentiable-{kname}", lambda leaf=leaf: tk.tree.is_differentiable(leaf), equal(False))
    case(
        f"tree.partition-{kname}",
        lambda leaf=leaf: tk.tree.partition([1.0, leaf]),
        satisfies(
            lambda r, leaf=leaf: r[0][0] == 1.0 and r[0][1] is None and r[1][1] is leaf, "the leaf goes to the rest"
        ),
    )

# --- tk.tree: two trees ---------------------------------------------------------------------

MISMATCHED = {
    "array-vs-list": (jnp.ones(2), [1.0, 1.0], r"structures differ"),
    "list-vs-tuple": ([1.0, 2.0], (1.0, 2.0), r"structures differ"),
    "dict-keys": ({"a": 1.0}, {"b": 1.0}, r"structures differ"),
    "array-vs-none": (jnp.ones(2), None, r"structures differ"),
    "struct-vs-tuple": (GG(jnp.ones(2), jnp.ones(2)), (jnp.ones(2), jnp.ones(2)), r"structures differ"),
    "static-fields": (GG(jnp.ones(2), jnp.ones(2)), GG(jnp.ones(2), jnp.ones(2), label="other"), r"structures differ"),
    "shapes": ({"w": jnp.ones(2)}, {"w": jnp.ones(3)}, r"at \['w'\]"),
    "empty-vs-full": (jnp.ones(2), jnp.zeros(0), r"at the root"),
    "scalar-vs-vector": (jnp.ones(2), 1.0, r"at the root"),
    "transposed": (jnp.ones((2, 3)), jnp.ones((3, 2)), r"at the root"),
}
for mname, (a, b, names) in MISMATCHED.items():
    for fname in ("dot", "isapprox"):
        f = getattr(tk.tree, fname)
        case(
            f"tree.{fname}-mismatch-{mname}",
            lambda f=f, a=a, b=b: f(a, b),
            Raises(ValueError, rf"tk\.tree\.{fname}", names, r"same (structure|shape)"),
        )
    case(
        f"tree.map-mismatch-{mname}",
        lambda a=a, b=b: tk.tree.map(lambda u, v: u, a, b),
        Raises(ValueError, r"tk\.tree\.map", r"argument 2", r"structure of x") if "structures" in names else close(a),
    )
    holes = "structures" not in names or b is None  # None is a hole in a partitioned tree
    case(
        f"tree.combine-mismatch-{mname}",
        lambda a=a, b=b: tk.tree.combine(a, b),
        satisfies(
            lambda r, a=a: all(u is v for u, v in zip(jax.tree.leaves(r), jax.tree.leaves(a), strict=True)),
            "the first tree's leaves win",
        )
        if holes
        else Raises(ValueError, r"tk\.tree\.combine", r"tree 2", r"partition"),
    )

case("tree.dot-mixed-dtypes", lambda: tk.tree.dot((jnp.ones(2, jnp.float16), 2), (jnp.ones(2), 3)), close(8.0))
case("tree.dot-complex-conjugates-x", lambda: tk.tree.dot(jnp.array([1j]), jnp.array([1j])), close(1.0 + 0j))
case("tree.isapprox-int-exact", lambda: tk.tree.isapprox(jnp.array([2**24 + 1]), jnp.array([2**24])), close(False))
case("tree.isapprox-close-f32", lambda: tk.tree.isapprox(jnp.ones(3), jnp.ones(3) * (1 + 1e-5)), close(True))
case("tree.isapprox-far-f32", lambda: tk.tree.isapprox(jnp.ones(3), jnp.ones(3) * 1.01), close(False))
case("tree.isapprox-atol", lambda: tk.tree.isapprox(jnp.zeros(2), jnp.full(2, 0.1), atol=0.2), close(True))
case("tree.isapprox-atol-inf", lambda: tk.tree.isapprox(jnp.zeros(2), jnp.ones(2), atol=math.inf), close(True))
case("tree.isapprox-rtol-zero", lambda: tk.tree.isapprox(jnp.ones(2), jnp.ones(2) + 1e-6, rtol=0.0), close(False))

BAD_NUMBERS = {
    "none": None,
    "str": "0.1",
    "list": [0.1],
    "nan": math.nan,
    "negative": -0.1,
    "bool": True,
    "array": jnp.ones(2),
    "complex": 1j,
    "key": KEY,
}
for bname, value in BAD_NUMBERS.items():
    for option in ("rtol", "atol"):
        if option == "rtol" and value is None:
            continue  # rtol=None is the default
        case(
            f"tree.isapprox-{option}-{bname}",
            lambda o=option, v=value: tk.tree.isapprox(1.0, 1.0, **{o: v}),
            Raises(
                TypeError if bname in ("none", "str", "list", "bool", "array", "complex", "key") else ValueError,
                r"tk\.tree\.isapprox",
                rf"\b{option}\b",
                r">= 0",
            ),
        )
    if bname != "negative":
        case(
            f"tree.isapprox-nans-{bname}",
            lambda v=value: tk.tree.isapprox(1.0, 1.0, nans=v),
            Raises(TypeError, r"tk\.tree\.isapprox", r"\bnans\b", r"True or False") if bname != "bool" else close(True),
        )
for bname, value in {**BAD_NUMBERS, "half": 0.5, "zero": 0, "minus-inf": -math.inf}.items():
    error = TypeError if bname in ("none", "str", "list", "bool", "array", "complex", "key") else ValueError
    case(
        f"tree.norm-p-{bname}",
        lambda v=value: tk.tree.norm(jnp.ones(2), v),
        Raises(error, r"tk\.tree\.norm", r"\bp\b", r">= 1|inf"),
    )
case("tree.norm-p-numpy-int", lambda: tk.tree.norm(jnp.array([3.0, 4.0]), np.int64(2)), close(5.0))
case("tree.norm-p-float-inf", lambda: tk.tree.norm(jnp.array([3.0, -4.0]), float("inf")), close(4.0))

NOT_CALLABLE = {"none": None, "int": 3, "str": "sqrt", "array": jnp.ones(2), "list": [jnp.sqrt]}
for bname, value in NOT_CALLABLE.items():
    case(
        f"tree.map-f-{bname}",
        lambda v=value: tk.tree.map(v, jnp.ones(2)),
        Raises(TypeError, r"tk\.tree\.map", r"\bf\b", r"function"),
    )
    if value is not None:
        case(
            f"tree.map-is_leaf-{bname}",
            lambda v=value: tk.tree.map(jnp.sqrt, jnp.ones(2), is_leaf=v),
            Raises(TypeError, r"tk\.tree\.map", r"is_leaf", r"function|None"),
        )
        case(
            f"tree.partition-predicate-{bname}",
            lambda v=value: tk.tree.partition(jnp.ones(2), v),
            Raises(TypeError, r"tk\.tree\.partition", r"predicate", r"function"),
        )
case("tree.map-strings", lambda: tk.tree.map(str.upper, {"a": "x", "b": ["y"]}), equal({"a": "X", "b": ["Y"]}))
case("tree.map-is_leaf", lambda: tk.tree.map(lambda g: g.label, [GG(1.0, 2.0)], is_leaf=tk.is_struct), equal(["gg"]))
case(
    "tree.map-nan",
    lambda: tk.tree.map(jnp.sqrt, {"a": jnp.array([np.nan, 4.0])}),
    close({"a": np.array([np.nan, 2.0])}),
)
case("tree.combine-nothing", lambda: tk.tree.combine(), Raises(TypeError, r"tk\.tree\.combine", r"trees", r"partition"))
case(
    "tree.combine-roundtrip",
    lambda: tk.tree.combine(*tk.tree.partition({"w": jnp.ones(2), "n": 3, "s": "a"})),
    satisfies(lambda r: r["n"] == 3 and r["s"] == "a" and r["w"].shape == (2,), "partition then combine"),
)
case("tk.zero-is-tree.zero", lambda: tk.zero((jnp.ones(2), 3)), close((np.zeros(2), 0)))
case("tk.zero-str", lambda: tk.zero("s"), Raises(TypeError, r"tk\.(tree\.)?zero", r"the root", r"static=True"))
case("tk.is_struct-class", lambda: tk.is_struct(GG), equal(False))
case("tk.is_struct-none", lambda: tk.is_struct(None), equal(False))
case("tk.is_struct-instance", lambda: tk.is_struct(GG(1.0, 2.0)), equal(True))

# --- gradients ------------------------------------------------------------------------------

SQUARE = lambda x: tk.tree.sum(jax.tree.map(lambda v: v * v, x))  # noqa: E731
GRADS = {
    "gradient": lambda f, *a: tk.gradient(f, *a),
    "withgradient": lambda f, *a: tk.withgradient(f, *a)[1],
    "pullback": lambda f, *a: tk.pullback(f, *a)[1](jnp.ones(())),
    "jacobian": lambda f, *a: tk.jacobian(f, *a),
}
for gname, g in GRADS.items():
    caller = rf"tk\.{gname}"
    for bname, value in NOT_CALLABLE.items():
        case(
            f"{gname}-f-{bname}",
            lambda g=g, v=value: g(v, jnp.ones(2)),
            Raises(TypeError, caller, r"\bf\b", r"function"),
        )
    for cname, (tree, leaves) in CONTAINERS.items():
        if leaves:
            expected = (jax.tree.map(lambda v: 2 * v, tree),)
            case(f"{gname}-{cname}", lambda g=g, tree=tree: g(SQUARE, tree), close(expected))
        else:
            case(
                f"{gname}-{cname}",
                lambda g=g, tree=tree: g(SQUARE, tree),
                Raises(TypeError, caller, r"\bx\b", r"Pass floats"),
            )
    for kname, (leaf, _) in NON_NUMERIC.items():
        opaque = kname in ("set", "object")
        error = (
            Raises(TypeError, caller, r"\bx is a", r"@tk\.struct|list or tuple")
            if opaque
            else Raises(TypeError, caller, r"\bx is", r"Pass floats")
        )
        case(f"{gname}-only-{kname}", lambda g=g, leaf=leaf: g(lambda x: 1.0, leaf), error)
        second = (
            Raises(TypeError, caller, r"\by is a", r"@tk\.struct|list or tuple") if opaque else close((2 * X, None))
        )
        case(f"{gname}-with-{kname}", lambda g=g, leaf=leaf: g(lambda x, y: SQUARE(x), jnp.asarray(X), leaf), second)
    for dname, (_, values, _, _, floating) in DTYPES.items():
        if dname.startswith("complex") and gname == "jacobian":
            case(
                f"{gname}-{dname}",
                dtype_call(dname, lambda x, g=g: g(lambda x: jnp.sum(jnp.abs(x) ** 2), x)),
                Raises(TypeError, caller, r"argument 1 is complex.*\bx must be real", r"real and imaginary"),
            )
        elif dname.startswith("complex"):
            case(
                f"{gname}-{dname}",
                dtype_call(dname, lambda x, g=g: g(lambda x: jnp.sum(jnp.abs(x) ** 2), x)),
                close((2 * values,), DTYPES[dname][2]),
            )
        elif floating:
            dtype = dtype_of(dname, jnp.asarray)
            case(f"{gname}-{dname}", dtype_call(dname, lambda x, g=g: g(SQUARE, x)), close((2 * values,), dtype))
        else:
            case(
                f"{gname}-{dname}",
                dtype_call(dname, lambda x, g=g: g(SQUARE, x)),
                Raises(TypeError, caller, r"\bx is \w+\[3\]", r"astype\(jnp\.float32\)"),
            )
    case(
        f"{gname}-prng-key-only",
        lambda g=g: g(lambda k: 1.0, KEY),
        Raises(TypeError, caller, r"key<fry>", r"Pass floats"),
    )
    case(f"{gname}-nan", lambda g=g: g(SQUARE, jnp.array([np.nan, 1.0])), close((np.array([np.nan, 2.0]),)))
    case(f"{gname}-inf", lambda g=g: g(SQUARE, jnp.array([np.inf, 1.0])), close((np.array([np.inf, 2.0]),)))
    case(f"{gname}-empty", lambda g=g: g(SQUARE, jnp.zeros(0)), close((np.zeros(0),)))
    case(
        f"{gname}-struct",
        lambda g=g: g(SQUARE, GG(jnp.ones(2), jnp.arange(2.0))),
        satisfies(lambda r: isinstance(r[0], GG) and np.allclose(r[0].b, [0, 2]), "a GG gradient"),
    )
    case(
        f"{gname}-param-box",
        lambda g=g: g(SQUARE, tk.Param(jnp.ones(2))),
        Raises(TypeError, caller, r"\bx is a tk\.Param", r"z\.value"),
    )
    case(
        f"{gname}-arity",
        lambda g=g: g(lambda x: SQUARE(x), jnp.ones(2), jnp.ones(2)),
        Raises(TypeError, caller, r"\bf\b", r"accept"),
    )
    case(
        f"{gname}-params-and-more",
        lambda g=g: g(lambda: 1.0, tk.Params([tk.Param(jnp.ones(2))]), jnp.ones(2)),
        Raises(TypeError, caller, r"tk\.Params", r"only argument|z\.value"),
    )

for gname in ("gradient", "withgradient"):
    g = GRADS[gname]
    caller = rf"tk\.{gname}"
    OUTPUTS = {
        "vector": jnp.ones(2),
        "str": "s",
        "none": None,
        "list": [1.0],
        "int": 3,
        "bool": True,
        "complex": jnp.array(1j),
        "int-array": jnp.array(1),
        "prng-key": KEY,
    }
    for oname, out in OUTPUTS.items():
        case(
            f"{gname}-returns-{oname}",
            lambda g=g, out=out: g(lambda x: out, jnp.ones(2)),
            Raises(TypeError, caller, r"\bf\b", r"Reduce the output"),
        )
    case(
        f"{gname}-returns-float16",
        lambda g=g: g(lambda x: jnp.sum(x).astype(jnp.float16), jnp.ones(2)),
        close((np.ones(2),), "float32"),
    )
    case(f"{gname}-returns-python-float", lambda g=g: g(lambda x: 2.0, jnp.ones(2)), close((np.zeros(2),)))
    case(
        f"{gname}-returns-nan", lambda g=g: g(lambda x: jnp.sum(x) * np.nan, jnp.ones(2)), close((np.full(2, np.nan),))
    )
    case(
        f"{gname}-implicit-takes-args",
        lambda g=g: g(lambda z: 1.0, tk.Params([tk.Param(jnp.ones(2))])),
        Raises(TypeError, caller, r"\bf\b", r"no arguments"),
    )
    case(
        f"{gname}-implicit-int-box",
        lambda g=g: g(lambda: 1.0, tk.Params([tk.Param(3)])),
        Raises(TypeError, caller, r"ps\[0\]", r"Pass floats"),
    )
    case(f"{gname}-implicit-empty", lambda g=g: len(g(lambda: 1.0, tk.Params([]))), equal(0))

for oname, out in {
    "str": "s",
    "none": None,
    "int": jnp.array([1, 2]),
    "complex": jnp.array([1j]),
    "prng-key": KEY,
    "list-of-str": ["s"],
}.items():
    case(
        f"jacobian-returns-{oname}",
        lambda out=out: tk.jacobian(lambda x: out, jnp.ones(2)),
        Raises(TypeError, r"tk\.jacobian", r"output", r"floating-point arrays"),
    )
case(
    "jacobian-returns-tuple",
    lambda: tk.jacobian(lambda x: (x, 2 * x), jnp.ones(2)),
    close(((np.eye(2), 2 * np.eye(2)),)),
)

PULLBACK_COTANGENTS = {
    "list": ([1.0, 1.0], ValueError, r"structure"),
    "none": (None, ValueError, r"structure"),
    "str": ("ab", TypeError, r"Δ"),
    "object": (Plain(), TypeError, r"Δ"),
    "function": (fn, TypeError, r"Δ"),
    "prng-key": (KEY, TypeError, r"Δ"),
    "object-array": (np.array([1, "a"], dtype=object), TypeError, r"Δ"),
    "scalar": (3.0, ValueError, r"shape"),
    "empty": (jnp.zeros(0), ValueError, r"shape"),
    "wrong-shape": (jnp.ones(3), ValueError, r"shape"),
    "complex": (jnp.ones(2, jnp.complex64), TypeError, r"c64"),
}
for pname, (delta, error, names) in PULLBACK_COTANGENTS.items():
    case(
        f"pullback-back-{pname}",
        lambda d=delta: tk.pullback(lambda x: 2 * x, jnp.ones(2))[1](d),
        Raises(error, r"tk\.pullback", names, r"ones_like|shaped like|structure of"),
    )
for dname in ("float16", "bfloat16", "int32", "bool"):
    make, values, *_ = DTYPES[dname]
    case(
        f"pullback-back-{dname}",
        lambda make=make, values=values: tk.pullback(lambda x: 2 * x, jnp.ones(3))[1](make(values)),
        close((2 * values.astype(float),), "float32"),
    )
case(
    "pullback-back-nan",
    lambda: tk.pullback(lambda x: 2 * x, jnp.ones(2))[1](jnp.array([np.nan, 1.0])),
    close((np.array([np.nan, 2.0]),)),
)

for dname, (_, values, _, x64, floating) in DTYPES.items():
    call = dtype_call(dname, lambda x: tk.hessian(lambda x: jnp.sum(x**3), x))
    if dname.startswith("complex"):
        case(
            f"hessian-{dname}",
            call,
            Raises(TypeError, r"tk\.hessian", r"argument 1 is complex.*\bx must be real", r"real and imaginary"),
        )
    elif floating:
        case(f"hessian-{dname}", call, close(np.diag(6 * values), "float64" if x64 else None))
    else:
        case(f"hessian-{dname}", call, Raises(TypeError, r"tk\.hessian", r"\bx is", r"astype"))
for bname, value in NOT_CALLABLE.items():
    case(
        f"hessian-f-{bname}",
        lambda v=value: tk.hessian(v, jnp.ones(2)),
        Raises(TypeError, r"tk\.hessian", r"\bf\b", r"function"),
    )
case(
    "hessian-vector-output",
    lambda: tk.hessian(lambda x: x, jnp.ones(2)),
    Raises(TypeError, r"tk\.hessian", r"\bf\b", r"Reduce the output"),
)
case(
    "hessian-nan",
    lambda: np.diag(tk.hessian(lambda x: jnp.sum(x**3), jnp.array([np.nan, 1.0]))),
    close(np.array([np.nan, 6.0])),
)  # off the diagonal, 0 · NaN is NaN: values pass through
case("hessian-empty", lambda: tk.hessian(lambda x: jnp.sum(x**3), jnp.zeros(0)), close(np.zeros((0, 0))))

# --- tk.adjoint -------------------------------------------------------------------------------


@tk.adjoint
def sq(x):
    return x * x, lambda d: (2 * x * d,)


@tk.adjoint
def scale(x, c):
    return x * c, lambda d: (d * c, jnp.sum(d * x))


@tk.adjoint
def clip(x):
    return x, lambda d: (jnp.clip(d, -1.0, 1.0),)


@tk.adjoint
def pair_product(p):
    return p[0] * p[1], lambda d: ([d * p[1], d * p[0]],)


for bname, value in {**NOT_CALLABLE, "list": [fn]}.items():
    case(
        f"adjoint-rule-{bname}",
        lambda v=value: tk.adjoint(v),
        Raises(TypeError, r"tk\.adjoint", r"got", r"function returning \(value, pullback\)"),
    )
for dname, (_, values, _, _, floating) in DTYPES.items():
    if dname.startswith("complex"):
        case(
            f"adjoint-{dname}",
            dtype_call(dname, sq),
            Raises(TypeError, r"tk\.adjoint rule `sq`", r"`x`", r"real and imaginary"),
        )
    elif floating:
        dtype = dtype_of(dname, jnp.asarray)
        case(
            f"adjoint-{dname}",
            dtype_call(dname, lambda x: tk.gradient(lambda y: jnp.sum(sq(y)), x)),
            close((2 * values,), dtype),
        )
    else:
        case(
            f"adjoint-{dname}",
            dtype_call(dname, sq),
            Raises(TypeError, r"tk\.adjoint rule `sq`", r"value", r"separate function"),
        )
case(
    "adjoint-prng-key",
    lambda: tk.gradient(lambda x, k: jnp.sum(scale(x, 2.0)), jnp.ones(2), KEY),
    close((np.full(2, 2.0), None)),
)
case(
    "adjoint-int-constant", lambda: tk.gradient(lambda x: jnp.sum(scale(x, 3)), jnp.ones(2)), close((np.full(2, 3.0),))
)
case("adjoint-list-argument", lambda: tk.gradient(lambda p: pair_product(p), [2.0, 3.0]), close(([3.0, 2.0],)))
case(
    "adjoint-nan",
    lambda: tk.gradient(lambda x: jnp.sum(sq(x)), jnp.array([np.nan, 1.0])),
    close((np.array([np.nan, 2.0]),)),
)
case("adjoint-empty", lambda: tk.gradient(lambda x: jnp.sum(sq(x)), jnp.zeros(0)), close((np.zeros(0),)))
case("adjoint-too-many-arguments", lambda: sq(jnp.ones(2), 3), Raises(TypeError, r"sq", r"sq\(x\)", r"signature"))
case("adjoint-unknown-keyword", lambda: sq(y=jnp.ones(2)), Raises(TypeError, r"sq", r"sq\(x\)", r"signature"))
case(
    "adjoint-jvp-of-non-linear",
    lambda: jax.jvp(clip, (1.0,), (1.0,)),
    Raises(TypeError, r"tk\.adjoint rule `clip`", r"forward-mode", r"reverse mode"),
)
case(
    "adjoint-forward_mode_problem-not-a-rule",
    lambda: tk.adjoints.forward_mode_problem(abs, 1.0),
    Raises(TypeError, r"tk\.adjoints\.forward_mode_problem", r"abs", r"@tk\.adjoint"),
)

MALFORMED = {  # (rule, argument, names, fix)
    "returns-value-only": (lambda x: x, r"value, pullback", r"right:"),
    "pullback-not-tuple": (lambda x: (x, lambda d: d), r"tuple", r"right:"),
    "pullback-too-many": (lambda x: (x, lambda d: (d, d)), r"\bx\b", r"None for an argument"),
    "cotangent-shape": (lambda x: (x, lambda d: (jnp.sum(d),)), r"`x`", r"sum over"),
    "cotangent-str": (lambda x: (x, lambda d: ("s",)), r"`x`", r"array like"),
    "cotangent-complex": (lambda x: (x, lambda d: (d * 1j,)), r"`x`", r"real like"),
    "cotangent-ignores-delta": (lambda x: (x, lambda d: (jnp.ones_like(x),)), r"`x`", r"right:"),
    "value-str": (lambda x: ("s", lambda d: (d,)), r"the value", r"separate function"),
}
for mname, (rule, names, fix) in MALFORMED.items():
    case(
        f"adjoint-malformed-{mname}",
        lambda rule=rule: tk.adjoint(rule)(jnp.ones(2)),
        Raises(TypeError if mname != "cotangent-shape" else ValueError, r"tk\.adjoint rule", names, fix),
    )

# --- tk.check_grad and tk.check_adjoint -------------------------------------------------------

SIN = lambda x: jnp.sum(jnp.sin(x))  # noqa: E731
for checker, name in ((tk.check_grad, "check_grad"), (tk.check_adjoint, "check_adjoint")):
    f = SIN if name == "check_grad" else sq
    caller = rf"tk\.{name}"
    BAD_OPTIONS = {
        "atol": {"negative": -1.0, "nan": math.nan, "str": "x", "none": None, "bool": True, "list": [1e-6]},
        "rtol": {"negative": -1.0, "inf": math.inf, "str": "x", "list": [1e-5]},
        "step": {"zero": 0.0, "negative": -1e-6, "nan": math.nan, "str": "x"},
        "seed": {"negative": -1, "float": 1.5, "str": "x", "none": None},
        "forward": {"str": "yes", "int": 1},
        "jit": {"none": None, "str": "no"},
        "vmap": {"none": None, "str": "no"},
    }
    for option, values in BAD_OPTIONS.items():
        for bname, value in values.items():
            error = ValueError if bname in ("negative", "nan", "inf", "zero") else TypeError
            case(
                f"{name}-{option}-{bname}",
                lambda c=checker, f=f, o=option, v=value: c(f, jnp.ones(2), **{o: v}),
                Raises(error, caller, rf"\b{option}\b", r"must be"),
            )
    for bname, value in NOT_CALLABLE.items():
        case(
            f"{name}-f-{bname}",
            lambda c=checker, v=value: c(v, jnp.ones(2)),
            Raises(TypeError, caller, r"\bf\b|is not a @tk\.adjoint", r"function|@tk\.adjoint"),
        )
    for sname, values in SPECIAL.items():
        case(
            f"{name}-{sname}-point",
            lambda c=checker, f=f, v=values: c(f, jnp.asarray(v)),
            Raises(ValueError, caller, r"\bx\[0\]", r"finite point"),
        )
    case(
        f"{name}-no-floats",
        lambda c=checker: c(
            tk.adjoint(lambda n: (1.0, lambda d: (None,))) if c is tk.check_adjoint else (lambda n: 1.0), 3
        ),
        Raises(TypeError, caller, r"no argument", r"float"),
    )
    case(
        f"{name}-complex",
        lambda c=checker, f=f: c(f, jnp.ones(2, jnp.complex64)),
        Raises(TypeError, caller + r"|tk\.adjoint rule `sq`", r"complex", r"real and imaginary"),
    )
for oname, out in {"str": "s", "int": 3, "none": None, "float32": jnp.float32(1.0), "prng-key": KEY}.items():
    case(
        f"check_grad-returns-{oname}",
        lambda out=out: tk.check_grad(lambda x: out, jnp.ones(2)),
        Raises(TypeError, r"tk\.check_grad", r"output|returned", r"float64|arrays"),
    )
case("check_grad-float16-point", lambda: tk.check_grad(SIN, jnp.ones(2, jnp.float16)), equal(None))
case(
    "check_grad-prng-key-held-fixed",
    lambda: tk.check_grad(lambda k, x: SIN(x), KEY, jnp.ones(2), vmap=False),
    equal(None),
)
case(
    "check_adjoint-not-a-rule",
    lambda: tk.check_adjoint(SIN, jnp.ones(2)),
    Raises(TypeError, r"tk\.check_adjoint", r"is not a @tk\.adjoint", r"tk\.check_grad"),
)

# --- optimisers -------------------------------------------------------------------------------

for oname in ("Descent", "Momentum", "Nesterov", "Adam"):
    optimiser = getattr(tk, oname)
    caller = rf"tk\.{oname}"
    for bname, value in {
        "str": "0.1",
        "none": None,
        "bool": True,
        "list": [0.1],
        "inf": math.inf,
        "nan": math.nan,
        "vector": jnp.array([0.1, 0.2]),
        "complex": 0.1j,
        "key": KEY,
    }.items():
        case(
            f"{oname}-eta-{bname}",
            lambda optimiser=optimiser, v=value: optimiser(v),
            Raises(ValueError, caller, r"η", r"η=0\.1|schedule"),
        )
        case(
            f"{oname}-eta-alias-{bname}",
            lambda optimiser=optimiser, v=value: optimiser(eta=v),
            Raises(ValueError, caller, r"η", r"η=0\.1|schedule"),
        )
    case(
        f"{oname}-unknown-hyperparameter",
        lambda optimiser=optimiser: optimiser(lr=0.1),
        Raises(TypeError, caller, r"'lr'", r"Example"),
    )
    case(
        f"{oname}-alias-and-name",
        lambda optimiser=optimiser: optimiser(0.1, eta=0.2),
        Raises(TypeError, caller, r"η.*eta", r"only one"),
    )
    first_step = {"Descent": 0.9, "Momentum": 0.9, "Nesterov": 0.81, "Adam": 0.9}[oname]  # from 1 with Δ = 1, η = 0.1
    for aname, arguments in {"eta-array": (jnp.array(0.1),), "rho-array": (0.1, jnp.array(0.9))}.items():
        if aname == "rho-array" and oname not in ("Momentum", "Nesterov"):
            continue
        case(
            f"{oname}-{aname}",  # 0-d arrays are hyperparameters too (optax.inject_hyperparams passes them)
            lambda optimiser=optimiser, a=arguments: (
                lambda o: tk.update(o, tk.setup(o, jnp.ones(2)), jnp.ones(2), jnp.ones(2))[0]
            )(optimiser(*a)),
            close(np.full(2, first_step)),
        )
    case(
        f"{oname}-numpy-float",
        lambda optimiser=optimiser: tk.update(
            optimiser(np.float32(0.5)), tk.setup(optimiser(np.float32(0.5)), jnp.ones(2)), jnp.ones(2), jnp.zeros(2)
        )[0],
        close(np.ones(2)),
    )
    case(
        f"{oname}-schedule",
        lambda optimiser=optimiser: (lambda o: tk.update(o, tk.setup(o, 1.0), 1.0, 0.0)[0])(
            optimiser(optax.constant_schedule(0.5))
        ),
        close(1.0),
    )
    if oname in ("Momentum", "Nesterov"):
        for bname, value in {
            "str": "0.9",
            "none": None,
            "bool": True,
            "nan": math.nan,
            "negative": -0.1,
            "above-one": 1.5,
            "vector": jnp.array([0.9, 0.9]),
        }.items():
            case(
                f"{oname}-rho-{bname}",
                lambda optimiser=optimiser, v=value: optimiser(0.1, v),
                Raises(ValueError, caller, r"ρ", r"\[0, 1\]"),
            )
            case(
                f"{oname}-rho-alias-{bname}",
                lambda optimiser=optimiser, v=value: optimiser(rho=v),
                Raises(ValueError, caller, r"ρ", r"\[0, 1\]"),
            )
for bname, value in {
    "one": (0.9,),
    "three": (0.9, 0.99, 0.999),
    "str": "ab",
    "none": None,
    "bool": (True, 0.9),
    "nan": (0.9, math.nan),
    "one-is-out": (0.9, 1.0),
    "negative": (-0.1, 0.9),
    "number": 0.9,
}.items():
    case(
        f"Adam-beta-{bname}",
        lambda v=value: tk.Adam(β=v),
        Raises(ValueError, r"tk\.Adam", r"β", r"\(0\.9, 0\.999\)|\[0, 1\)"),
    )
for bname, value in {
    "negative": -1e-8,
    "nan": math.nan,
    "inf": math.inf,
    "str": "x",
    "none": None,
    "bool": True,
}.items():
    case(f"Adam-epsilon-{bname}", lambda v=value: tk.Adam(epsilon=v), Raises(ValueError, r"tk\.Adam", r"ϵ", r"ϵ=1e-8"))
case(
    "Adam-beta-array",
    lambda: tk.Adam(β=np.array([0.9, 0.999])),
    Raises(ValueError, r"tk\.Adam", r"β", r"\(0\.9, 0\.999\)"),
)
case(
    "Adam-beta-list",
    lambda: tk.update(tk.Adam(0.1, [0.9, 0.999]), tk.setup(tk.Adam(), jnp.ones(2)), jnp.ones(2), jnp.ones(2))[0],
    close(np.full(2, 0.9)),
)
case(
    "Descent-negative-eta-ascends",
    lambda: tk.update(tk.Descent(-0.5), None, jnp.ones(2), jnp.ones(2))[0],
    close(np.full(2, 1.5)),
)

# --- setup, update, update_ -------------------------------------------------------------------

NOT_OPTIMISERS = {
    "none": None,
    "str": "adam",
    "uncalled-toolkit": tk.Momentum,
    "uncalled-optax": optax.adam,
    "dict": {},
    "number": 0.1,
}
for bname, value in NOT_OPTIMISERS.items():
    fix = r"\(call it\)" if callable(value) else r"tk\.Momentum\(\)"
    case(
        f"setup-opt-{bname}", lambda v=value: tk.setup(v, jnp.ones(2)), Raises(TypeError, r"tk\.setup", r"\bopt\b", fix)
    )
    case(
        f"update-opt-{bname}",
        lambda v=value: tk.update(v, (), jnp.ones(2), jnp.ones(2)),
        Raises(TypeError, r"tk\.update", r"\bopt\b", fix),
    )
    case(
        f"update_-opt-{bname}",
        lambda v=value: tk.update_(v, tk.Params([]), None),
        Raises(TypeError, r"tk\.update_", r"\bopt\b", fix),
    )

MOMENTUM = tk.Momentum(0.1, 0.5)
for dname, (_, values, _, _, floating) in DTYPES.items():

    def step(x):
        return tk.update(MOMENTUM, tk.setup(MOMENTUM, {"x": x}), {"x": x}, {"x": jnp.ones_like(x)})[0]["x"]

    if floating:
        dtype = dtype_of(dname, jnp.asarray)
        case(f"update-{dname}", dtype_call(dname, step), close(values - 0.1, dtype))
    else:
        case(
            f"update-{dname}",
            dtype_call(dname, step),
            Raises(ValueError, r"tk\.setup", r"params", r"jnp\.asarray\(x, dtype=jnp\.float32\)"),
        )

PARAMS = {"w": jnp.array([1.0, 2.0]), "n": 3}
STATE = tk.setup(MOMENTUM, PARAMS)
for cname, (tree, leaves) in CONTAINERS.items():
    if leaves:
        case(
            f"update-{cname}",
            lambda tree=tree: tk.update(tk.Descent(0.5), tk.setup(tk.Descent(0.5), tree), tree, tree)[0],
            close(jax.tree.map(lambda v: v / 2, tree)),
        )
    else:
        case(
            f"setup-{cname}",
            lambda tree=tree: tk.setup(MOMENTUM, tree),
            Raises(ValueError, r"tk\.setup", r"params", r"float arrays"),
        )
for kname, (leaf, _) in NON_NUMERIC.items():
    params = {"w": jnp.ones(2), "extra": leaf}
    if kname in ("set", "object"):
        case(
            f"setup-with-{kname}",
            lambda p=params: tk.setup(MOMENTUM, p),
            Raises(TypeError, r"tk\.setup", r"params\['extra'\]", r"@tk\.struct|list or tuple"),
        )
    else:
        case(
            f"update-with-{kname}",
            lambda p=params: tk.update(MOMENTUM, tk.setup(MOMENTUM, p), p, {"w": jnp.ones(2), "extra": None}),
            satisfies(
                lambda r, leaf=leaf: r[0]["extra"] is leaf and np.allclose(r[0]["w"], 0.9), "the leaf is left alone"
            ),
        )
        case(
            f"setup-only-{kname}",
            lambda leaf=leaf: tk.setup(MOMENTUM, leaf),
            Raises(ValueError, r"tk\.setup", r"params", r"float arrays"),
        )
    case(
        f"update-grad-{kname}",
        lambda leaf=leaf: tk.update(MOMENTUM, STATE, PARAMS, {"w": leaf, "n": None}),
        Raises(TypeError, r"tk\.update", r"\['w'\]", r"an array like f32\[2\]"),
    )

BAD_GRADS = {  # (grads, error, names, fix)
    "none": ({"w": None, "n": None}, ValueError, r"\['w'\]", r"tk\.tree\.zero"),
    "list-for-array": ({"w": [1.0, 1.0], "n": None}, TypeError, r"\['w'\]", r"an array like"),
    "shape": ({"w": jnp.ones(3), "n": None}, ValueError, r"\['w'\]", r"gradient shaped like"),
    "scalar": ({"w": 1.0, "n": None}, ValueError, r"\['w'\]", r"gradient shaped like"),
    "complex": ({"w": jnp.ones(2, jnp.complex64), "n": None}, TypeError, r"\['w'\]", r"real"),
    "structure": ({"w": jnp.ones(2)}, ValueError, r"grads", r"structure of params"),
    "list-tree": ([jnp.ones(2), None], ValueError, r"grads", r"structure of params"),
}
for bname, (grads, error, names, fix) in BAD_GRADS.items():
    case(
        f"update-grads-{bname}",
        lambda g=grads: tk.update(MOMENTUM, STATE, PARAMS, g),
        Raises(error, r"tk\.update", names, fix),
    )
for dname in ("float16", "int32", "bool"):
    make, values, *_ = DTYPES[dname]
    case(
        f"update-grads-{dname}",
        lambda make=make: tk.update(tk.Descent(0.5), (), jnp.zeros(3), make(np.array([1, 0, 1])))[0],
        close(np.array([-0.5, 0.0, -0.5]), "float32"),
    )
case(
    "update-grads-nan",
    lambda: tk.update(tk.Descent(0.5), (), jnp.zeros(2), jnp.array([np.nan, 1.0]))[0],
    close(np.array([np.nan, -0.5])),
)
case(
    "update-grads-inf",
    lambda: tk.update(tk.Descent(0.5), (), jnp.zeros(2), jnp.array([np.inf, 1.0]))[0],
    close(np.array([-np.inf, -0.5])),
)

BAD_STATES = {
    "none": None,
    "str": "state",
    "empty-dict": {},
    "other-optimiser": tk.setup(tk.Adam(), PARAMS),
    "other-shape": tk.setup(MOMENTUM, {"w": jnp.ones(3), "n": 3}),
    "other-structure": tk.setup(MOMENTUM, {"w": jnp.ones(2)}),
}
for bname, state in BAD_STATES.items():
    case(
        f"update-state-{bname}",
        lambda s=state: tk.update(MOMENTUM, s, PARAMS, {"w": jnp.ones(2), "n": None}),
        Raises(ValueError, r"tk\.update", r"\bstate\b", r"tk\.setup\(opt, params\)"),
    )

# Under jax.jit the same checks run on traced values, before anything is compiled.
JIT_UPDATE = jax.jit(lambda p, g: tk.update(MOMENTUM, STATE, p, g)[0])
case("update-under-jit", lambda: JIT_UPDATE(PARAMS, {"w": jnp.ones(2), "n": None})["w"], close(np.array([0.9, 1.9])))
case(
    "update-under-jit-shape",
    lambda: JIT_UPDATE(PARAMS, {"w": jnp.ones(3), "n": None}),
    Raises(ValueError, r"tk\.update", r"\['w'\]", r"gradient shaped like"),
)
case(
    "update-under-jit-state",
    lambda: jax.jit(lambda p: tk.update(MOMENTUM, BAD_STATES["other-shape"], p, {"w": p["w"], "n": None}))(PARAMS),
    Raises(ValueError, r"tk\.update", r"\bstate\b", r"tk\.setup\(opt, params\)"),
)
case(
    "gradient-under-jit-returns-vector",
    lambda: jax.jit(lambda x: tk.gradient(lambda y: y, x))(jnp.ones(2)),
    Raises(TypeError, r"tk\.gradient", r"\bf\b", r"Reduce the output"),
)
case(
    "isapprox-under-jit-traced-atol",
    lambda: jax.jit(lambda a: tk.tree.isapprox(1.0, 1.0, atol=a))(0.1),
    Raises(TypeError, r"tk\.tree\.isapprox", r"\batol\b", r">= 0"),
)
case(
    "norm-under-vmap-nan",
    lambda: jax.vmap(tk.tree.norm)(jnp.array([[np.nan, 1.0], [3.0, 4.0]])),
    close(np.array([np.nan, 5.0])),
)

BOX = tk.Param(jnp.array([1.0, 2.0]))
BOXES = tk.Params([BOX])
OTHER = tk.Param(jnp.array([1.0, 2.0]))
OTHER_GRADS = tk.gradient(lambda: jnp.sum(OTHER.value**2), tk.Params([OTHER]))
for bname, value in {"array": jnp.ones(2), "list": [BOX], "param": BOX, "none": None}.items():
    case(
        f"update_-ps-{bname}",
        lambda v=value: tk.update_(MOMENTUM, v, OTHER_GRADS),
        Raises(
            TypeError, r"tk\.update_", r"tk\.Params|\bps\b", r"tk\.update\(opt, state, params, grads\)|tk\.Params\(\["
        ),
    )
for bname, value in {"none": None, "tuple": (jnp.ones(2),), "dict": {BOX: jnp.ones(2)}}.items():
    case(
        f"update_-gs-{bname}",
        lambda v=value: tk.update_(MOMENTUM, BOXES, v),
        Raises(TypeError, r"tk\.update_", r"\bgs\b", r"tk\.gradient\(f, ps\)"),
    )
case(
    "update_-gs-of-other-params",
    lambda: tk.update_(MOMENTUM, BOXES, OTHER_GRADS),
    Raises(ValueError, r"tk\.update_", r"\bgs\b", r"tk\.gradient\(f, ps\)"),
)

# --- tk.optimise ------------------------------------------------------------------------------

LOSS = lambda p: jnp.sum(p**2)  # noqa: E731
DESCENT = tk.Descent(0.1)


def optimise(**changes: Any) -> Any:
    arguments = {"loss": LOSS, "params": jnp.array([1.0, 2.0]), "opt": DESCENT, "steps": 3, **changes}
    return tk.optimise(arguments.pop("loss"), arguments.pop("params"), arguments.pop("opt"), **arguments)


def diverged(result: Any) -> bool:
    return result.stop_reason.startswith("diverged")


OPTIMISE_BAD = {  # option -> {name: (value, error, fix)}
    "steps": {
        "zero": 0,
        "negative": -1,
        "float": 1.5,
        "str": "10",
        "none": None,
        "bool": True,
        "huge": 2**40,
        "nan": math.nan,
    },
    "tol": {"negative": -1, "nan": math.nan, "inf": math.inf, "str": "x", "bool": True, "list": [0.1]},
    "gtol": {"negative": -1e-3, "nan": math.nan, "str": "x"},
    "log_every": {"zero": 0, "float": 2.5, "str": "1"},
    "checkpoint_every": {"zero": 0, "negative": -5},
    "progress": {"str": "no", "int": 2},
    "batched": {"str": "yes", "none": None},
    "callback": {"int": 3, "str": "print"},
    "checkpoint": {"int": 3, "list": ["a.ckpt"]},
    "resume": {"int": 3, "missing": "/nonexistent/run.ckpt"},
    "key": {"int": 0, "str": "k", "two-keys": jax.random.split(KEY), "float-array": jnp.ones(2)},
    "batch_size": {"without-data": 2},
}
for option, values in OPTIMISE_BAD.items():
    for bname, value in values.items():
        error = (
            TypeError
            if option in ("progress", "batched", "callback", "checkpoint", "key")
            or (option == "resume" and bname == "int")
            else ValueError
        )
        if option == "resume" and bname == "missing":
            error = FileNotFoundError
        extra = {"log_every": 1} if option == "callback" else {}
        extra = {"checkpoint": "unused.ckpt"} if option == "checkpoint_every" else extra
        case(
            f"optimise-{option}-{bname}",
            lambda o=option, v=value, e=extra: optimise(**{o: v, **e}),
            Raises(error, r"tk\.optimise", rf"\b{option}\b", r"must|pass|no such"),
        )
for bname, value in NOT_CALLABLE.items():
    case(
        f"optimise-loss-{bname}",
        lambda v=value: optimise(loss=v),
        Raises(TypeError, r"tk\.optimise", r"\bloss\b", r"function"),
    )
for bname, value in NOT_OPTIMISERS.items():
    case(
        f"optimise-opt-{bname}",
        lambda v=value: optimise(opt=v),
        Raises(TypeError, r"tk\.optimise", r"\bopt\b", r"tk\.Momentum\(\)|call it"),
    )
for oname, out in {
    "vector": lambda p: p,
    "str": lambda p: "s",
    "none": lambda p: None,
    "int": lambda p: 3,
    "complex": lambda p: jnp.sum(p) * 1j,
    "list": lambda p: [jnp.sum(p)],
    "prng-key": lambda p: KEY,
}.items():
    case(
        f"optimise-loss-returns-{oname}",
        lambda out=out: optimise(loss=out),
        Raises(TypeError, r"tk\.optimise", r"\bloss\b", r"Reduce it"),
    )
case(
    "optimise-loss-takes-sample-without-data",
    lambda: optimise(loss=lambda p, s: 1.0),
    Raises(TypeError, r"tk\.optimise", r"\bloss\b", r"Without data"),
)
case(
    "optimise-loss-without-sample-with-data",
    lambda: optimise(data=jnp.ones((3, 2))),
    Raises(TypeError, r"tk\.optimise", r"\bloss\b", r"sample as its last argument"),
)
for pname, params in {
    "none": None,
    "str": "abc",
    "int-array": jnp.ones(2, jnp.int32),
    "prng-key": KEY,
    "empty-dict": {},
    "bool": jnp.ones(2, bool),
}.items():
    case(
        f"optimise-params-{pname}",
        lambda p=params: optimise(params=p),
        Raises(ValueError, r"tk\.optimise", r"params", r"float arrays"),
    )
case(
    "optimise-params-object",
    lambda: optimise(params={"w": jnp.ones(2), "o": Plain()}, loss=lambda p: jnp.sum(p["w"])),
    Raises(TypeError, r"tk\.optimise", r"params\['o'\]", r"@tk\.struct"),
)
case(
    "optimise-params-set",
    lambda: optimise(params={"w": jnp.ones(2), "o": {1.0}}, loss=lambda p: jnp.sum(p["w"])),
    Raises(TypeError, r"tk\.optimise", r"params\['o'\]", r"list or tuple"),
)
case(
    "optimise-batched-without-axis",
    lambda: optimise(
        params={"a": jnp.ones(2), "b": jnp.array(1.0)}, batched=True, loss=lambda p: jnp.sum(p["a"]) + p["b"]
    ),
    Raises(ValueError, r"tk\.optimise", r"params\['b'\]", r"leading \(problem\) axis"),
)
case(
    "optimise-batched-params",
    lambda: optimise(params=tk.Params([tk.Param(jnp.ones(2))]), loss=lambda: 1.0, batched=True),
    Raises(ValueError, r"tk\.optimise", r"batched=True", r"explicit parameters"),
)

DATA_BAD = {  # data -> (error, names, fix)
    "list-of-floats": ([1.0, 2.0], TypeError, r"data\[0\]", r"leading example axis"),
    "str": ("abc", TypeError, r"\bdata\b", r"leading example axis"),
    "str-leaf": ({"a": jnp.ones(3), "s": "abc"}, TypeError, r"data\['s'\]", r"leading example axis"),
    "lengths": ({"a": jnp.ones(3), "b": jnp.ones(4)}, ValueError, r"data\['a'\]: 3, data\['b'\]: 4", r"disagree"),
    "empty": (jnp.zeros((0, 2)), ValueError, r"\bdata\b", r"zero examples"),
    "scalar": (jnp.array(1.0), ValueError, r"\bdata\b", r"leading example axis"),
    "no-arrays": ({}, ValueError, r"\bdata\b", r"pass None, a sampler"),
}
for dname, (data, error, names, fix) in DATA_BAD.items():
    case(
        f"optimise-data-{dname}",
        lambda d=data: optimise(data=d, loss=lambda p, s: LOSS(p)),
        Raises(error, r"tk\.optimise", names, fix),
    )
for bname, value in {"zero": 0, "too-big": 4, "float": 1.5, "bool": True}.items():
    case(
        f"optimise-batch_size-{bname}",
        lambda v=value: optimise(data=jnp.ones((3, 2)), batch_size=v, key=KEY, loss=lambda p, s: LOSS(p)),
        Raises(ValueError, r"tk\.optimise", r"batch_size", r"\[1, 3\]"),
    )
case(
    "optimise-batch_size-sampler",
    lambda: optimise(data=lambda k: 1.0, batch_size=2, key=KEY, loss=lambda p, s: LOSS(p)),
    Raises(ValueError, r"tk\.optimise", r"batch_size", r"have the sampler draw a batch"),
)
case(
    "optimise-sampler-without-key",
    lambda: optimise(data=lambda k: 1.0, loss=lambda p, s: LOSS(p)),
    Raises(ValueError, r"tk\.optimise", r"key", r"key=jax\.random\.key\(0\)"),
)
case(
    "optimise-sampler-arity",
    lambda: optimise(data=lambda: 1.0, key=KEY, loss=lambda p, s: LOSS(p)),
    Raises(TypeError, r"tk\.optimise", r"\bdata\b", r"sample\(key\)"),
)
for oname, out in {"str": "s", "none-and-str": (None, "s"), "object": Plain()}.items():
    case(
        f"optimise-sampler-returns-{oname}",
        lambda out=out: optimise(data=lambda k: out, key=KEY, loss=lambda p, s: LOSS(p)),
        Raises(TypeError, r"tk\.optimise", r"\bdata\b", r"arrays"),
    )

case(
    "optimise-implicit-loss-takes-params",
    lambda: optimise(params=tk.Params([tk.Param(jnp.ones(2))]), loss=lambda p: 1.0),
    Raises(TypeError, r"tk\.optimise", r"loss\(\)", r"without data|no sample"),
)
case("optimise-steps-numpy-int", lambda: optimise(steps=np.int64(2)).steps, equal(2))

# Values (each compiles a small loop, so only a few): NaN and inf stop with "diverged", other dtypes run in their dtype.
case("optimise-nan-params", lambda: optimise(params=jnp.array([np.nan, 1.0])), satisfies(diverged, "diverged"))
case("optimise-inf-params", lambda: optimise(params=jnp.array([np.inf, 1.0])), satisfies(diverged, "diverged"))
case(
    "optimise-nan-data",
    lambda: optimise(data=jnp.array([[1.0], [np.nan]]), loss=lambda p, s: jnp.sum(p * s)),
    satisfies(lambda r: r.stop_reason == "diverged at step 2", "diverged at step 2"),
)
case("optimise-float16", lambda: optimise(params=jnp.ones(2, jnp.float16)).params, close(np.full(2, 0.8**3), "float16"))
case("optimise-empty-params", lambda: optimise(params=jnp.zeros(0)).params, close(np.zeros(0)))

# --- tk.mse and tk.mae ------------------------------------------------------------------------

for loss_name in ("mse", "mae"):
    L = getattr(tk, loss_name)
    caller = rf"tk\.{loss_name}"
    power = 2 if loss_name == "mse" else 1
    for dname, (_, values, _, x64, _) in DTYPES.items():
        expected = np.mean(np.abs(values.astype(complex)) ** power)
        dtype = (
            "float64"
            if x64
            else ("float32" if dname.startswith(("float64", "int", "uint", "bool", "complex")) else dname)
        )
        case(f"{loss_name}-{dname}", dtype_call(dname, lambda x, L=L: L(x, jnp.zeros_like(x))), close(expected, dtype))
    for cname, (tree, leaves) in CONTAINERS.items():
        if leaves:
            case(
                f"{loss_name}-{cname}",
                lambda L=L, t=tree: L(t, jax.tree.map(lambda v: 0.0, t)),
                close(np.mean(np.abs(leaves) ** power)),
            )
        else:
            case(f"{loss_name}-{cname}", lambda L=L, t=tree: L(t, t), Raises(ValueError, caller, r"ŷ", r"pass ŷ"))
    for kname, (leaf, _) in NON_NUMERIC.items():
        case(
            f"{loss_name}-y-{kname}",
            lambda L=L, leaf=leaf: L(jnp.ones(2), leaf),
            Raises(TypeError if kname not in ("str-array", "object-array") else TypeError, caller, r"\by\b", r"array"),
        )
        case(
            f"{loss_name}-nested-{kname}",
            lambda L=L, leaf=leaf: L({"a": 1.0, "b": leaf}, {"a": 1.0, "b": leaf}),
            Raises(TypeError, caller, r"ŷ\['b'\]", r"array"),
        )
    for mname, (a, b, names) in MISMATCHED.items():
        if "structures" in names:
            case(
                f"{loss_name}-mismatch-{mname}",
                lambda L=L, a=a, b=b: L(a, b),
                Raises(ValueError, caller, r"ŷ and y", r"same structure"),
            )
        else:
            case(
                f"{loss_name}-mismatch-{mname}",
                lambda L=L, a=a, b=b: L(a, b) if not isinstance(b, float) else L(b, a),
                Raises(ValueError, caller, r"ŷ", r"shapes must be equal|reshape")
                if not isinstance(b, float)
                else close(0.0),
            )
    for sname, values in SPECIAL.items():
        v = np.array(values)
        with np.errstate(invalid="ignore"):
            expected = np.mean(np.abs(v - 1.0) ** power)
        case(f"{loss_name}-{sname}", lambda L=L, v=v: L(jnp.asarray(v), jnp.ones(2)), close(expected))
    case(f"{loss_name}-empty", lambda L=L: L(jnp.zeros(0), jnp.zeros(0)), close(np.nan))
    case(
        f"{loss_name}-scalar-label",
        lambda L=L: L(jnp.array([1.0, 3.0]), 1.0),
        close(np.mean(np.abs([0.0, 2.0]) ** power)),
    )
    case(
        f"{loss_name}-struct", lambda L=L: L(GG(jnp.ones(2), jnp.zeros(2)), GG(jnp.zeros(2), jnp.zeros(2))), close(0.5)
    )
    for bname, value in NOT_CALLABLE.items():
        case(
            f"{loss_name}-agg-{bname}",
            lambda L=L, v=value: L(jnp.ones(2), jnp.ones(2), agg=v),
            Raises(TypeError, caller, r"\bagg\b", r"jnp\.mean"),
        )
    case(f"{loss_name}-agg-sum", lambda L=L: L(jnp.ones(2), jnp.zeros(2), agg=jnp.sum), close(2.0))

# --- tk.Param, tk.Params, tk.Grads ------------------------------------------------------------

for bname, value in {"int": 3, "none": None, "box": BOX, "array": jnp.ones(2)}.items():
    case(
        f"Params-{bname}",
        lambda v=value: tk.Params(v),
        Raises(TypeError, r"tk\.Params", r"got", r"tk\.Params\(\[z\]\)"),
    )
for bname, value in {"str": "ab", "arrays": [jnp.ones(2)], "mixed": [BOX, 3]}.items():
    case(
        f"Params-of-{bname}",
        lambda v=value: tk.Params(v),
        Raises(TypeError, r"tk\.Params", r"got a", r"tk\.Param\(x\)"),
    )
case("Params-set", lambda: len(tk.Params({BOX})), equal(1))
case("Params-duplicates", lambda: len(tk.Params([BOX, BOX])), equal(1))
case(
    "Params-append-array",
    lambda: tk.Params([]).append(jnp.ones(2)),
    Raises(TypeError, r"tk\.Params", r"got a", r"tk\.Param\(x\)"),
)
case(
    "Params-assign-count",
    lambda: tk.Params([tk.Param(1.0)]).assign([]),
    Raises(ValueError, r"tk\.Params\.assign", r"0 values for 1 boxes", r"one value per box"),
)
case(
    "Params-assign-int",
    lambda: tk.Params([tk.Param(1.0)]).assign(3),
    Raises(TypeError, r"tk\.Params\.assign", r"values", r"one value per box"),
)
case(
    "Params-call_with-not-callable",
    lambda: BOXES.call_with((jnp.ones(2),), 3),
    Raises(TypeError, r"tk\.Params\.call_with", r"\bf\b", r"function"),
)
for bname, value in {"int": 3, "array": jnp.ones(2), "other-box": OTHER}.items():
    case(
        f"Grads-index-{bname}",
        lambda v=value: tk.gradient(lambda: jnp.sum(BOX.value), BOXES)[v],
        Raises(KeyError, r"tk\.Grads", r"is not one of the Params", r"add it to the Params"),
    )
case(
    "Grads-params-not-Params",
    lambda: tk.Grads(3, []),
    Raises(TypeError, r"tk\.Grads", r"params", r"tk\.gradient\(f, ps\)"),
)
case(
    "Grads-count",
    lambda: tk.Grads(BOXES, []),
    Raises(ValueError, r"tk\.Grads", r"0 gradients for 1", r"one gradient per"),
)
for op_name, op in {
    "add": lambda z: z + 1,
    "matmul": lambda z: z @ jnp.ones(2),
    "index": lambda z: z[0],
    "neg": lambda z: -z,
    "array": lambda z: np.asarray(z),
}.items():
    case(
        f"Param-{op_name}",
        lambda op=op: op(tk.Param(jnp.ones(2))),
        Raises(TypeError, r"tk\.Param", r"box", r"z\.value"),
    )
case("Param-any-value", lambda: tk.Param("anything").value, equal("anything"))
case(
    "Param-nan-gradient",
    lambda: tk.gradient(lambda: jnp.sum(BOX.value * np.nan), BOXES)[BOX],
    close(np.full(2, np.nan)),
)

# --- tk.struct, tk.field and struct arithmetic ------------------------------------------------

for bname, value in {"int": 3, "str": "GG", "function": fn, "instance": Plain(), "list": [GG]}.items():
    case(f"struct-{bname}", lambda v=value: tk.struct(v), Raises(TypeError, r"tk\.struct", r"got", r"@tk\.struct"))
for bname, value in {"str": "yes", "int": 1, "none": None}.items():
    case(
        f"struct-kw_only-{bname}",
        lambda v=value: tk.struct(kw_only=v),
        Raises(TypeError, r"tk\.struct", r"kw_only", r"True or False"),
    )
    case(
        f"field-static-{bname}",
        lambda v=value: tk.field(static=v),
        Raises(TypeError, r"tk\.field", r"static", r"True or False"),
    )
case(
    "field-default-and-factory",
    lambda: tk.field(default=1, default_factory=list),
    Raises(ValueError, r"tk\.field", r"default and default_factory", r"only one"),
)
case("field-unknown-option", lambda: tk.field(bogus=1), Raises(TypeError, r"tk\.field", r"'bogus'", r"takes"))
case(
    "field-factory-not-callable",
    lambda: tk.field(default_factory=3),
    Raises(TypeError, r"tk\.field", r"default_factory", r"function"),
)

G = GG(jnp.ones(2), jnp.zeros(2))
for kname, (leaf, _) in NON_NUMERIC.items():
    if kname in ("str",):
        case(
            f"GG-field-{kname}",
            lambda leaf=leaf: GG(leaf, jnp.zeros(2)),
            Raises(TypeError, r"GG", r"GG\.a", r"static=True"),
        )
    case(
        f"GG-nested-field-{kname}",
        lambda leaf=leaf: GG([1.0, leaf], jnp.zeros(2)) + 1,
        Raises(TypeError, r"GG", r"GG\.a\[1\]", r"static=True|key_data|dtype="),
    )
    case(
        f"GG-plus-{kname}",
        lambda leaf=leaf: G + leaf,
        Raises(TypeError, r"GG", r"GG", r"struct of the same type|static|key_data|dtype="),
    )
    if kname not in ("str", "bytes"):  # str + GG and bytes + GG: Python's str/bytes refuse before GG is asked
        case(
            f"{kname}-plus-GG",
            lambda leaf=leaf: leaf + G,
            Raises(TypeError, r"GG", r"GG", r"struct of the same type|static|key_data|dtype="),
        )
for bname, value in {"list": [1.0, 1.0], "tuple": (1.0, 1.0), "none": None, "dict": {"a": 1.0}}.items():
    case(
        f"GG-plus-{bname}",
        lambda v=value: G + v,
        Raises(TypeError, r"GG", r"GG \+ " + type(value).__name__, r"jnp\.asarray|struct of the same type"),
    )
    case(
        f"GG-times-{bname}",
        lambda v=value: G * v,
        Raises(TypeError, r"GG", r"GG \* " + type(value).__name__, r"jnp\.asarray|struct of the same type"),
    )
case("GG-label-list", lambda: GG(jnp.ones(2), jnp.ones(2), label=[1]), Raises(TypeError, r"GG", r"GG\.label", r"tuple"))
case(
    "GG-label-array",
    lambda: GG(jnp.ones(2), jnp.ones(2), label=jnp.ones(2)),
    Raises(TypeError, r"GG", r"GG\.label", r"drop static=True"),
)
case("GG-replace-unknown", lambda: G.replace(c=1), Raises(TypeError, r"GG\.replace", r"'c'", r"fields are a, b, label"))
case("GG-replace-str", lambda: G.replace(a="s"), Raises(TypeError, r"GG", r"GG\.a", r"static=True"))
case("GG-broadcast", lambda: G + jnp.ones(3), Raises(ValueError, r"GG", r"GG\.a", r"do not broadcast"))
case(
    "GG-static-differ",
    lambda: G + GG(jnp.ones(2), jnp.ones(2), label="x"),
    Raises(ValueError, r"GG", r"GG\.label", r"static fields are equal"),
)
case("GG-prng-key-field-arithmetic", lambda: GG(KEY, jnp.ones(2)) * 2, Raises(TypeError, r"GG", r"GG\.a", r"key_data"))
case(
    "GG-prng-key-field-allowed",
    lambda: repr(GG(KEY, jnp.ones(2))),
    satisfies(lambda r: "key<fry>" in r, "a readable repr"),
)
case(
    "GG-object-field-arithmetic",
    lambda: GG(Plain(), jnp.ones(2)) + 1,
    Raises(TypeError, r"GG", r"GG\.a", r"@tk\.struct|static"),
)
for dname, (_, values, *_) in DTYPES.items():  # the dtype oracle: the same op on the array
    case(
        f"GG-times-2-{dname}",
        dtype_call(dname, lambda x: (GG(x, x) * 2).a),
        close(values.astype(int if dname == "bool" else values.dtype) * 2, dtype_of(dname, lambda x: x * 2)),
    )
    case(
        f"GG-plus-GG-{dname}",
        dtype_call(dname, lambda x: (GG(x, x) + GG(x, x)).b),
        close(values + values if dname != "bool" else values | values, dtype_of(dname, lambda x: x + x)),
    )
for sname, values in SPECIAL.items():
    v = np.array(values)
    case(f"GG-{sname}", lambda v=v: (GG(jnp.asarray(v), jnp.ones(2)) * 2).a, close(v * 2))
case("GG-list-field", lambda: (GG([1.0, 2.0], jnp.ones(2)) * 2).a, close([2.0, 4.0]))
case("GG-none-field", lambda: (GG(None, jnp.ones(2)) + 1).b, close(np.full(2, 2.0)))
case("GG-empty-field", lambda: (GG(jnp.zeros(0), jnp.zeros(0)) + 1).a, close(np.zeros(0)))
case("GG-numpy-left", lambda: (np.ones(2) + G).a, close(np.full(2, 2.0)))
case("GG-divide-by-zero", lambda: (G / 0).b, close(np.full(2, np.nan)))


# --- the sweep ----------------------------------------------------------------------------------


test_bad_input = SWEEP.test_bad_input()
test_the_sweep_is_large = SWEEP.test_the_sweep_is_large(values=150, errors=300)
