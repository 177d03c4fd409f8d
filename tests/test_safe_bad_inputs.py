"""A sweep of bad inputs over ``tk.safe`` (sqrt, hypot, norm, atan2, cbrt, pow, div).

Each case is a call and what it must give: either a correct value, checked against
NumPy in float64 (with the documented conventions: ``atan2(0, 0) = 0``, ``div(0, 0) = 0``)
and, for the dtype cases, against the dtype the ``jnp`` function of the same name gives,
or an error *raised by toolkit* whose message

* starts with the public name the user called (``tk.safe.sqrt:``),
* names the argument at fault (``x``, ``y``, ``p``, ``axis``, ``keepdims``, ``signed``),
* says how to fix it,

and mentions no toolkit-internal function (``_pow_rule``, ``tk.adjoint rule``, ...) and no
JAX-internal jargon, and comes from a check toolkit made (the innermost frame of the
traceback is in toolkit, not in JAX or NumPy).

What each kind of input gives:

* lists and tuples of numbers are read as arrays (``jnp.asarray``), so they give values;
  ragged ones, and ``None``, strings, bytes, dicts, sets, objects, classes, functions,
  PRNG keys and NumPy string or object arrays are a ``TypeError``;
* complex numbers are a ``TypeError`` (the functions are real; ``jnp`` has the complex ones);
* every real dtype gives a value in the dtype ``jnp`` gives (integers and booleans in its
  float type; an integer power of an integer too, where ``jnp.power`` would keep integers);
* NaN and inf pass through as IEEE arithmetic has them (``hypot(inf, nan) = inf``,
  ``pow(nan, 0) = 1``), nothing is clipped; empty arrays give empty results;
* shapes that do not broadcast, and bad ``axis``/``keepdims``/``signed``, are errors,
  under ``jax.jit`` too (they are checked on shapes and dtypes, before tracing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toolkit as tk
from tests.sweep import INTERNALS, KEY, Gives, Plain, Raises, Sweep, fn, in_x64

S = tk.safe
# Words a message must never contain, besides the sweep's own: toolkit's private names and JAX internals.
FORBIDDEN = [
    *INTERNALS,  # _pow_rule, _sqrt, _hypot_parts, tk.adjoint rules, ...
    r"not a valid JAX",
    r"requires ndarray or scalar arguments",
    r"out of bounds for array",
]
TOLERANCE = {"float16": 2e-3, "bfloat16": 1e-2, "float32": 2e-6, "float64": 1e-13}
SWEEP = Sweep(forbidden=FORBIDDEN, tolerance=TOLERANCE)
case = SWEEP.case


# --- oracles ------------------------------------------------------------------------------------


def close(expected: Any, dtype: Any = None, shape: tuple[int, ...] | None = None) -> Gives:
    """An array close to ``expected`` (NaN where it is NaN, inf where it is inf), of ``dtype`` if given."""

    def check(got: Any) -> None:
        got_dtype = np.dtype(got.dtype) if hasattr(got, "dtype") else jnp.result_type(got)  # not canonicalised
        if dtype is not None:
            assert got_dtype == jnp.dtype(dtype), f"dtype {got_dtype}, expected {jnp.dtype(dtype)}"
        want = np.asarray(expected, np.float64)
        assert np.shape(got) == (want.shape if shape is None else shape), (
            f"shape {np.shape(got)}, expected {want.shape}"
        )
        values = np.asarray(got).astype(np.float64)  # bfloat16 too (ml_dtypes); outside x64 as well
        SWEEP.assert_close(values, want, jnp.dtype(got_dtype).name)

    return Gives(check)


# --- the functions, each with the argument swept, its NumPy oracle and its jnp twin (the dtype oracle) ---

X = np.array([0.5, -1.5, 2.0])
OTHER = np.array([2.0, 0.5, -1.0])  # the other argument of a binary function
BASE = np.array([0.5, 2.0, 9.0])  # positive bases for pow's exponent argument


def np_sqrt(x):
    with np.errstate(invalid="ignore"):
        return np.sqrt(x)  # NaN below 0, as jnp.sqrt


def np_atan2(y, x):
    return np.where((y == 0) & (x == 0), 0.0, np.arctan2(y, x))


def np_div(x, y):
    with np.errstate(all="ignore"):
        return np.where((x == 0) & (y == 0), 0.0, x / np.where((x == 0) & (y == 0), 1.0, y))


def np_signed(x, p):
    return np.sign(x) * np.abs(x) ** p


# name -> (call with the swept argument v, the argument's name, NumPy oracle of v, jnp twin of v)
FUNCTIONS: dict[str, tuple[Callable[[Any], Any], str, Callable[[Any], Any], Callable[[Any], Any]]] = {
    "sqrt": (S.sqrt, "x", lambda v: np_sqrt(v), jnp.sqrt),
    "cbrt": (S.cbrt, "x", np.cbrt, jnp.cbrt),
    "norm": (S.norm, "x", lambda v: np.linalg.norm(v, axis=-1), lambda v: jnp.linalg.norm(v, axis=-1)),
    "hypot-x": (lambda v: S.hypot(v, OTHER), "x", lambda v: np.hypot(v, OTHER), lambda v: jnp.hypot(v, OTHER)),
    "hypot-y": (lambda v: S.hypot(OTHER, v), "y", lambda v: np.hypot(OTHER, v), lambda v: jnp.hypot(OTHER, v)),
    "atan2-y": (lambda v: S.atan2(v, OTHER), "y", lambda v: np_atan2(v, OTHER), lambda v: jnp.arctan2(v, OTHER)),
    "atan2-x": (lambda v: S.atan2(OTHER, v), "x", lambda v: np_atan2(OTHER, v), lambda v: jnp.arctan2(OTHER, v)),
    "pow-x": (lambda v: S.pow(v, 3), "x", lambda v: np.power(v, 3.0), lambda v: jnp.power(v, 3.0)),
    "pow-p": (lambda v: S.pow(BASE, v), "p", lambda v: np.power(BASE, v), lambda v: jnp.power(BASE, v)),
    "pow-signed": (
        lambda v: S.pow(v, 1 / 3, signed=True),
        "x",
        lambda v: np_signed(v, 1 / 3),
        lambda v: jnp.power(v, 1 / 3),
    ),
    "div-x": (lambda v: S.div(v, OTHER), "x", lambda v: np_div(v, OTHER), lambda v: jnp.divide(v, OTHER)),
    "div-y": (lambda v: S.div(OTHER, v), "y", lambda v: np_div(OTHER, v), lambda v: jnp.divide(OTHER, v)),
}


def who(fname: str) -> str:
    return rf"tk\.safe\.{fname.split('-')[0]}"


# dtype name -> (make the array from values, the values, run in x64, the NumPy dtype JAX holds them in)
DTYPES = {
    "float16": (lambda v: jnp.asarray(v, jnp.float16), X, False, jnp.float16),
    "bfloat16": (lambda v: jnp.asarray(v, jnp.bfloat16), X, False, jnp.bfloat16),
    "float32": (lambda v: jnp.asarray(v, jnp.float32), X, False, np.float32),
    "float64-numpy-x32": (lambda v: np.asarray(v, np.float64), X, False, np.float32),
    "float64-x64": (lambda v: jnp.asarray(v, jnp.float64), X, True, np.float64),
    "float64-numpy-x64": (lambda v: np.asarray(v, np.float64), X, True, np.float64),
    "int8": (lambda v: jnp.asarray(v, jnp.int8), np.array([1.0, -2.0, 3.0]), False, np.int8),
    "int16": (lambda v: jnp.asarray(v, jnp.int16), np.array([1.0, -2.0, 3.0]), False, np.int16),
    "int32": (lambda v: jnp.asarray(v, jnp.int32), np.array([1.0, -2.0, 3.0]), False, np.int32),
    "uint8": (lambda v: jnp.asarray(v, jnp.uint8), np.array([1.0, 2.0, 3.0]), False, np.uint8),
    "uint32": (lambda v: jnp.asarray(v, jnp.uint32), np.array([1.0, 2.0, 3.0]), False, np.uint32),
    "int64-x64": (lambda v: jnp.asarray(v, jnp.int64), np.array([1.0, -2.0, 3.0]), True, np.int64),
    "bool": (lambda v: jnp.asarray(v, bool), np.array([1.0, 0.0, 1.0]), False, np.bool_),
}
COMPLEX = {
    "complex64": (lambda: jnp.asarray(X * (1 + 1j), jnp.complex64), False),
    "complex128-x64": (lambda: jnp.asarray(X * (1 - 2j), jnp.complex128), True),
    "python-complex": (lambda: 1.5j, False),
    "numpy-complex-scalar": (lambda: np.complex64(1 + 1j), False),
}


def with_dtype(f: Callable[[Any], Any], twin: Callable[[Any], Any], make: Callable[[Any], Any], values: Any) -> Any:
    """``f`` of the array, and the dtype the jnp twin gives it (jnp.sqrt's float type where jnp keeps integers)."""
    x = make(values)
    # Eagerly, in the case's own x64 setting: jax.eval_shape here, with x64 switched on and off between
    # cases, leaves JAX caches that give later x64 calls float32 (jax 0.10.2).
    got = twin(x).dtype
    dtype = got if jnp.issubdtype(got, jnp.inexact) else jnp.sqrt(jnp.zeros((), got)).dtype
    return f(x), dtype


def close_in(expected: Any) -> Gives:
    """A ``(value, dtype)`` pair from :func:`with_dtype`: the value close to ``expected``, of that dtype."""

    def check(got: Any) -> None:
        value, dtype = got
        close(expected, dtype).check(value)

    return Gives(check)


# The other argument of a binary function is swept over fewer dtypes (each dtype compiles its own kernel).
SECOND = ("hypot-y", "atan2-x", "pow-p", "div-y")
FEW_DTYPES = ("float16", "int32", "bool", "float64-x64")
RARE_DTYPES = ("int16", "uint32", "float64-numpy-x64")  # like their neighbours: swept on three functions

for fname, (f, arg, oracle, twin) in FUNCTIONS.items():
    caller = who(fname)
    name = rf"\b{arg}\b"
    for dname, (make, values, x64, held) in DTYPES.items():
        if fname in SECOND and dname not in FEW_DTYPES:
            continue
        if dname in RARE_DTYPES and fname not in ("sqrt", "hypot-x", "pow-x"):
            continue
        values = values if not fname.startswith("pow-p") else values / 2  # keep 9 ** p small in float16
        expected = oracle(values.astype(held).astype(np.float64))  # the values as the dtype holds them
        call = lambda f=f, twin=twin, make=make, values=values: with_dtype(f, twin, make, values)
        case(f"{fname}-{dname}", in_x64(call) if x64 else call, close_in(expected))
    for dname, (make, x64) in COMPLEX.items():
        call = lambda f=f, make=make: f(make())
        case(
            f"{fname}-{dname}",
            in_x64(call) if x64 else call,
            Raises(TypeError, caller, rf"{name} is complex|complex number", r"\.real"),
        )

# Python scalars: values, weakly typed as in jnp.
for fname, (f, _, oracle, _) in FUNCTIONS.items():
    if fname in SECOND or fname == "norm":  # the norm of a number has no axis: below
        continue
    for sname, value in {"float": 2.5, "int": 2}.items():
        case(f"{fname}-python-{sname}", lambda f=f, value=value: f(value), close(oracle(np.float64(value))))

# --- wrong types ----------------------------------------------------------------------------------


NOT_NUMBERS = {  # value -> a regex for the fix
    "none": (None, r"pass a float or an array"),
    "str": ("abc", r"pass a float or an array"),
    "bytes": (b"ab", r"pass a float or an array"),
    "dict": ({"a": 1.0}, r"pass a float or an array"),
    "set": ({1.0, 2.0}, r"pass a float or an array"),
    "object": (Plain(), r"pass a float or an array"),
    "class": (Plain, r"pass a float or an array"),
    "function": (fn, r"pass a float or an array"),
    "prng-key": (KEY, r"jax\.random\.uniform"),
    "prng-keys": (jax.random.split(KEY, 3), r"jax\.random\.uniform"),
    "str-array": (np.array(["a", "b", "c"]), r"np\.asarray\(\w+, dtype=float\)"),
    "object-array": (np.array([1, "a", 2.0], dtype=object), r"np\.asarray\(\w+, dtype=float\)"),
    "ragged-list": ([[1.0, 2.0], [1.0]], r"pass a number or an array of numbers"),
    "list-of-str": (["a", "b", "c"], r"pass a number or an array of numbers"),
    "tuple-with-none": ((1.0, None, 2.0), r"pass a number or an array of numbers"),
}
for fname, (f, arg, _, _) in FUNCTIONS.items():
    for kname, (value, fix) in NOT_NUMBERS.items():
        case(
            f"{fname}-{kname}",
            lambda f=f, value=value: f(value),
            Raises(TypeError, who(fname), rf"\b{arg} (must be|is)", fix),
        )

# Lists and tuples of numbers are arrays; an empty list is an empty array.
CONTAINERS = {"list": [0.5, -1.5, 2.0], "tuple": (0.5, -1.5, 2.0), "list-of-arrays": [jnp.float32(0.5)] * 3}
for fname, (f, _, oracle, _) in FUNCTIONS.items():
    for cname, value in CONTAINERS.items():
        v = np.asarray(value, np.float64)
        case(f"{fname}-{cname}", lambda f=f, value=value: f(value), close(oracle(v), "float32"))
    if fname != "norm":
        case(f"{fname}-nested-list", lambda f=f: f([[1.0, 2.0, 4.0]]), close(oracle(np.array([[1.0, 2.0, 4.0]]))))

# --- empty, broadcast and mismatched shapes -----------------------------------------------------

for fname in ("sqrt", "cbrt"):
    f = getattr(S, fname)
    for shape in [(0,), (0, 3), (2, 0)]:
        case(f"{fname}-empty-{shape}", lambda f=f, s=shape: f(jnp.zeros(s)), close(np.zeros(shape)))
    case(f"{fname}-empty-list", lambda f=f: f([]), close(np.zeros(0), "float32"))
for shape, expected in {(0,): 0.0, (0, 3): np.zeros(0), (2, 0): np.zeros(2), (3, 0, 2): np.zeros((3, 0))}.items():
    case(f"norm-empty-{shape}", lambda s=shape: S.norm(jnp.zeros(s)), close(expected))
case("norm-empty-list", lambda: S.norm([]), close(0.0, "float32"))

BINARY = {
    "hypot": (S.hypot, ("x", "y"), np.hypot),
    "atan2": (S.atan2, ("y", "x"), np_atan2),
    "div": (S.div, ("x", "y"), np_div),
    "pow": (lambda a, b: S.pow(a, b), ("x", "p"), np.power),
}
A2 = np.array([[0.5], [2.0]])  # (2, 1)
B3 = np.array([1.5, 0.25, 3.0])  # (3,)
for bname, (f, (first, second), oracle) in BINARY.items():
    caller = rf"tk\.safe\.{bname}"
    case(f"{bname}-broadcast-(2,1)-(3,)", lambda f=f: f(jnp.asarray(A2), jnp.asarray(B3)), close(oracle(A2, B3)))
    case(f"{bname}-broadcast-scalar", lambda f=f: f(jnp.asarray(B3), 2.0), close(oracle(B3, 2.0)))
    case(f"{bname}-empty-both", lambda f=f: f(jnp.zeros(0), jnp.zeros(0)), close(np.zeros(0)))
    case(f"{bname}-empty-with-scalar", lambda f=f: f(jnp.zeros((0, 3)), 2.0), close(np.zeros((0, 3))))
    MISMATCHED = {
        "(3,)-(4,)": (jnp.ones(3), jnp.ones(4)),
        "(2,3)-(3,2)": (jnp.ones((2, 3)), jnp.ones((3, 2))),
        "(3,)-(0,)": (jnp.ones(3), jnp.zeros(0)),
        "list-(4,)": ([1.0, 2.0, 3.0], jnp.ones(4)),
    }
    for mname, (a, b) in MISMATCHED.items():
        case(
            f"{bname}-mismatch-{mname}",
            lambda f=f, a=a, b=b: f(a, b),
            Raises(ValueError, caller, rf"\b{first}\b.*\band {second}\b", r"do not broadcast.*size-1 axes"),
        )
    case(
        f"{bname}-mismatch-jit",
        lambda f=f: jax.jit(f)(jnp.ones(3), jnp.ones(4)),
        Raises(ValueError, caller, rf"\b{first}\b.*\band {second}\b", r"size-1 axes"),
    )

# --- NaN and inf pass through ---------------------------------------------------------------------

SPECIALS = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -2.0])
PAIR_X = np.repeat(SPECIALS, len(SPECIALS))
PAIR_Y = np.tile(SPECIALS, len(SPECIALS))
with np.errstate(all="ignore"):
    UNARY_SPECIAL = {
        "sqrt": (S.sqrt, np.sqrt(SPECIALS)),
        "cbrt": (S.cbrt, np.cbrt(SPECIALS)),
        # IEEE (and jnp, and C's pow): (-inf) ** 0.75 = inf; NumPy's own p = 0.5 is sqrt, which gives NaN there
        "pow-three-quarters": (lambda v: S.pow(v, 0.75), np.power(SPECIALS, 0.75)),
        "pow-two": (lambda v: S.pow(v, 2), np.power(SPECIALS, 2.0)),
        "pow-signed-third": (lambda v: S.pow(v, 1 / 3, signed=True), np_signed(SPECIALS, 1 / 3)),
    }
    PAIR_SPECIAL = {
        "hypot": (S.hypot, np.hypot(PAIR_X, PAIR_Y)),  # IEEE: hypot(inf, nan) = inf
        "atan2": (S.atan2, np_atan2(PAIR_X, PAIR_Y)),
        "div": (S.div, np_div(PAIR_X, PAIR_Y)),
        "pow": (S.pow, np.power(PAIR_X, PAIR_Y)),  # IEEE: pow(nan, 0) = 1, pow(1, nan) = 1
        "pow-signed": (lambda a, b: S.pow(a, b, signed=True), np.sign(PAIR_X) * np.abs(PAIR_X) ** PAIR_Y),
    }
for fname, (f, expected) in UNARY_SPECIAL.items():
    case(f"{fname}-nan-inf", lambda f=f: f(jnp.asarray(SPECIALS, jnp.float32)), close(expected, "float32"))
    case(f"{fname}-nan-inf-float64", in_x64(lambda f=f: f(jnp.asarray(SPECIALS))), close(expected, "float64"))
for fname, (f, expected) in PAIR_SPECIAL.items():
    case(
        f"{fname}-nan-inf-pairs",
        lambda f=f: f(jnp.asarray(PAIR_X, jnp.float32), jnp.asarray(PAIR_Y, jnp.float32)),
        close(expected, "float32"),
    )
NORM_SPECIAL = {"nan": [np.nan, 1.0], "inf": [np.inf, 1.0], "-inf": [-np.inf, 0.0], "nan-inf": [np.nan, np.inf]}
for sname, values in NORM_SPECIAL.items():
    v = np.array(values)
    case(f"norm-{sname}", lambda v=v: S.norm(jnp.asarray(v)), close(np.sqrt(np.sum(v * v))))
case("div-by-zero", lambda: S.div(jnp.array([1.0, -1.0, 0.0]), 0.0), close([np.inf, -np.inf, 0.0]))
case("pow-zero-to-negative", lambda: S.pow(jnp.zeros(2), -1.5), close([np.inf, np.inf]))
case("sqrt-negative-is-nan", lambda: S.sqrt(jnp.array([-1.0, 4.0])), close([np.nan, 2.0]))
case("pow-negative-fraction-is-nan", lambda: S.pow(jnp.array([-8.0, 8.0]), 1 / 3), close([np.nan, 2.0]))

# --- options ------------------------------------------------------------------------------------

M = np.arange(6.0).reshape(2, 3) - 2
for aname, axis in {"0": 0, "-2": -2, "tuple": (0, 1), "list": [0, 1], "none": None, "numpy-int": np.int64(1)}.items():
    axes = tuple(axis) if isinstance(axis, list) else axis
    case(f"norm-axis-{aname}", lambda a=axis: S.norm(jnp.asarray(M), axis=a), close(np.linalg.norm(M, axis=axes)))
case("norm-axis-empty-tuple", lambda: S.norm(jnp.asarray(M), axis=()), close(np.abs(M)))
case("norm-scalar-axis-none", lambda: S.norm(jnp.float32(-3.0), axis=None), close(3.0))
case(
    "norm-keepdims",
    lambda: S.norm(jnp.asarray(M), axis=0, keepdims=True),
    close(np.linalg.norm(M, axis=0, keepdims=True)),
)
case(
    "norm-keepdims-numpy-bool",
    lambda: S.norm(jnp.asarray(M), keepdims=np.True_),
    close(np.linalg.norm(M, axis=-1, keepdims=True)),
)
BAD_AXES = {  # axis -> (error, names, fix)
    "float": (1.5, TypeError, r"\baxis\b", r"an int, a tuple of ints or None"),
    "bool": (True, TypeError, r"\baxis\b", r"an int, a tuple of ints or None"),
    "str": ("0", TypeError, r"\baxis\b", r"an int, a tuple of ints or None"),
    "tuple-of-floats": ((0.0, 1.0), TypeError, r"\baxis\b", r"an int, a tuple of ints or None"),
    "array": (jnp.array(0), TypeError, r"\baxis\b", r"an int, a tuple of ints or None"),
    "too-big": (2, ValueError, r"axis=2 is out of range for x of shape \(2, 3\)", r"axes in \[-2, 2\)"),
    "too-negative": (-3, ValueError, r"axis=-3 is out of range", r"axes in \[-2, 2\)"),
    "repeated": ((0, 0), ValueError, r"axis=\(0, 0\) names an axis twice", r"each axis once"),
    "repeated-negative": ((1, -1), ValueError, r"axis=\(1, -1\) names an axis twice", r"each axis once"),
}
for aname, (axis, error, names, fix) in BAD_AXES.items():
    case(
        f"norm-axis-{aname}",
        lambda a=axis: S.norm(jnp.asarray(M), axis=a),
        Raises(error, r"tk\.safe\.norm", names, fix),
    )
case(
    "norm-scalar",
    lambda: S.norm(jnp.float32(3.0)),
    Raises(ValueError, r"tk\.safe\.norm", r"axis=-1 is out of range for x of shape \(\)", r"jnp\.abs\(x\)"),
)
case(
    "norm-python-float",
    lambda: S.norm(3.0),
    Raises(ValueError, r"tk\.safe\.norm", r"axis=-1 is out of range", r"jnp\.abs\(x\)"),
)
case(
    "norm-axis-out-of-range-jit",
    lambda: jax.jit(lambda v: S.norm(v, axis=1))(jnp.ones(3)),
    Raises(ValueError, r"tk\.safe\.norm", r"axis=1 is out of range", r"axes in \[-1, 1\)"),
)
FLAGS = {"int": 1, "zero": 0, "none": None, "str": "yes", "array": jnp.array(True), "list": [True]}
for bname, value in FLAGS.items():
    case(
        f"norm-option-keepdims-{bname}",
        lambda v=value: S.norm(jnp.ones(3), keepdims=v),
        Raises(TypeError, r"tk\.safe\.norm", r"\bkeepdims\b", r"True or False"),
    )
    case(
        f"pow-option-signed-{bname}",
        lambda v=value: S.pow(jnp.ones(3), 2.0, signed=v),
        Raises(TypeError, r"tk\.safe\.pow", r"\bsigned\b", r"True or False"),
    )
case("pow-signed-numpy-bool", lambda: S.pow(jnp.array([-8.0]), 1 / 3, signed=np.True_), close([-2.0]))
case("pow-huge-int-exponent", lambda: S.pow(jnp.array([2.0, 1.0, 0.5]), 10**30), close([np.inf, 1.0, 0.0]))
case("pow-int-of-int", lambda: S.pow(jnp.array([1, -2, 3], jnp.int8), 3), close([1.0, -8.0, 27.0], "float32"))
case("pow-python-int-of-int", lambda: S.pow(2, 3), close(8.0, "float32"))
case("pow-int-of-int-x64", in_x64(lambda: S.pow(jnp.array([2, 3]), 2)), close([4.0, 9.0], "float64"))

# --- under jax.jit: dtypes and shapes are checked at trace time --------------------------------------

JITTED = {
    "sqrt": (lambda v: S.sqrt(v), "x"),
    "cbrt": (lambda v: S.cbrt(v), "x"),
    "norm": (lambda v: S.norm(v), "x"),
    "hypot": (lambda v: S.hypot(1.0, v), "y"),
    "atan2": (lambda v: S.atan2(v, 1.0), "y"),
    "pow": (lambda v: S.pow(2.0, v), "p"),
    "div": (lambda v: S.div(1.0, v), "y"),
}
for fname, (f, arg) in JITTED.items():
    caller = rf"tk\.safe\.{fname}"
    case(
        f"{fname}-jit-complex",
        lambda f=f: jax.jit(f)(jnp.ones(3, jnp.complex64)),
        Raises(TypeError, caller, rf"\b{arg} is complex", r"\.real"),
    )
    case(
        f"{fname}-jit-prng-key",
        lambda f=f: jax.jit(f)(jax.random.split(KEY, 3)),
        Raises(TypeError, caller, rf"\b{arg} is a PRNG key", r"jax\.random\.uniform"),
    )
    case(
        f"{fname}-jit-str-constant",
        lambda f=f: jax.jit(lambda v: f("abc") + v)(1.0),
        Raises(TypeError, caller, rf"\b{arg} must be", r"pass a float or an array"),
    )
    if fname not in ("sqrt", "norm", "pow"):  # each compiles: three are enough to show the checks compose
        continue
    case(
        f"{fname}-jit-float32",
        lambda f=f: jax.jit(f)(jnp.array([1.0, 4.0, 9.0])) - f(jnp.array([1.0, 4.0, 9.0])),
        close(np.zeros(() if fname == "norm" else 3), "float32"),
    )
    case(
        f"{fname}-grad-list",
        lambda f=f: jax.grad(lambda v: jnp.sum(f(v)))([1.0, 4.0, 9.0]),
        Gives(lambda got: None if isinstance(got, list) and len(got) == 3 else pytest.fail(f"not a list: {got}")),
    )
case("sqrt-python-bool", lambda: S.sqrt(True), close(1.0))
case("hypot-numpy-float32-scalar", lambda: S.hypot(np.float32(3.0), 4.0), close(5.0, "float32"))


# --- the sweep ------------------------------------------------------------------------------------


test_bad_input = SWEEP.test_bad_input()
test_the_sweep_is_large = SWEEP.test_the_sweep_is_large(values=200, errors=250)
