"""The harness of the bad-input sweeps (tests/test_bad_inputs.py, tests/colour/test_bad_inputs.py,
tests/test_safe_bad_inputs.py).

A sweep is a list of cases, each a call and what it must give: a value (:class:`Gives`, whose
``check`` raises an ``AssertionError`` when it is wrong) or an error (:class:`Raises`) *raised by
toolkit* whose message starts with the public name the user called, names the argument at fault
and says how to fix it. Every error of a sweep also

* comes from a check toolkit made: the innermost frame of its traceback is in toolkit, not in
  JAX, NumPy, optax, colour-science or Python's own machinery;
* mentions none of the words in :data:`FORBIDDEN` (JAX internals a user cannot act on), nor any
  of the sweep's own extras (toolkit's private names, for one).

Each sweep module builds one :class:`Sweep` with its extras and its tolerances, adds its cases
with ``SWEEP.case``, and ends with the two tests the sweep makes::

    SWEEP = Sweep(forbidden=[...], tolerance={"float16": ..., "bfloat16": ..., "float32": ..., "float64": ...})
    case = SWEEP.case
    ...
    test_bad_input = SWEEP.test_bad_input()
    test_the_sweep_is_large = SWEEP.test_the_sweep_is_large(values=..., errors=...)
"""

from __future__ import annotations

import dataclasses
import os
import re
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toolkit as tk

TOOLKIT = os.path.dirname(os.path.abspath(tk.__file__))


# --- what a case expects ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Raises:
    """An error of ``type`` whose message starts with ``who`` and matches ``names`` and ``fix``."""

    type: type
    who: str  # a regex for the public name the message starts with
    names: str  # a regex for the argument, field, leaf path or setting
    fix: str  # a regex for the advice


@dataclasses.dataclass(frozen=True)
class Gives:
    """A value, checked by ``check`` (which raises an ``AssertionError`` when it is wrong)."""

    check: Callable[[Any], None]


def equal(expected: Any) -> Gives:
    """The value equals ``expected`` and is of its type."""

    def check(got: Any) -> None:
        assert got == expected and type(got) is type(expected), f"got {got!r}, expected {expected!r}"

    return Gives(check)


def satisfies(predicate: Callable[[Any], bool], what: str) -> Gives:
    """``predicate`` holds for the value (``what`` says what it wants, for the failure message)."""

    def check(got: Any) -> None:
        assert predicate(got), f"{what}: got {got!r}"

    return Gives(check)


def in_x64(call: Callable[[], Any]) -> Callable[[], Any]:
    """``call``, run with 64-bit types enabled."""

    def run() -> Any:
        with jax.enable_x64(True):
            return call()

    return run


# --- inputs every sweep tries where a number or an array goes ---------------------------------------


class Plain:
    """An undecorated class."""

    def __init__(self):
        self.w = jnp.ones(3)


def fn(v):
    return v


KEY = jax.random.key(0)


# --- what an error must not say ---------------------------------------------------------------------

# JAX internals and Python's own complaints, which no sweep's messages may contain.
FORBIDDEN = [
    r"toolkit\.\w+\._",
    r"jax\._src",
    r"jaxlib",
    r"\bTracer\b",
    r"DynamicJaxprTracer",
    r"ShapedArray",
    r"abstract array",
    r"\bjaxpr\b",
    r"truth value of an array",
    r"has no attribute",
    r"not callable$",
    r"object is not iterable",
    r"ufunc '",
    r"Cannot interpret",
    r"does not accept dtype",
]
# The machinery behind a module's functions: any private name, its kernels and adjoint rules, jit's primitive,
# and JAX's broadcasting error (for the sweeps whose functions check shapes themselves).
INTERNALS = [
    r"(?<![\w.])_[a-z]\w*",  # a private helper: _run, _compiled, _cone, _pow_rule, _sqrt, _hypot_parts, ...
    r"\bkernel\b",
    r"\bpjit\b",
    r"tk\.adjoint",
    r"\brule\b",
    r"incompatible shapes for broadcasting",
]


def key_error_message(error: BaseException) -> str:
    """The error's message; a ``KeyError``'s own (``str`` of one quotes it)."""
    return error.args[0] if isinstance(error, KeyError) and error.args else str(error)


def raised_in_toolkit(error: BaseException) -> bool:
    """The innermost frame of the traceback is toolkit's own code."""
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and os.path.abspath(frames[-1].filename).startswith(TOOLKIT)


# --- a sweep ----------------------------------------------------------------------------------------


class Sweep:
    """One module's cases, with what its errors must not say and how close its values must be.

    ``forbidden``: regexes no message may match, besides :data:`FORBIDDEN`. ``tolerance``: dtype name ->
    the relative and absolute tolerance of :meth:`assert_close`. ``message_of``: an error's message.
    """

    def __init__(
        self,
        *,
        forbidden: Sequence[str],
        tolerance: Mapping[str, float],
        message_of: Callable[[BaseException], str] = str,
    ) -> None:
        self.forbidden = [*forbidden, *FORBIDDEN]
        self.tolerance = dict(tolerance)
        self.message_of = message_of
        self.cases: list[Any] = []  # pytest.param(call, expected, id=name), for test_bad_input
        self.collected: list[tuple[str, str]] = []  # (case, kind) for the summary test

    def case(self, name: str, call: Callable[[], Any], expected: Raises | Gives) -> None:
        self.cases.append(pytest.param(call, expected, id=name))
        self.collected.append((name, "value" if isinstance(expected, Gives) else "error"))

    # --- checks -------------------------------------------------------------------------------------

    def check_error(self, error: BaseException, expected: Raises) -> None:
        message = self.message_of(error)
        assert raised_in_toolkit(error), f"raised outside toolkit: {type(error).__name__}: {message}"
        for word in self.forbidden:
            assert not re.search(word, message), f"message mentions {word!r}: {message}"
        assert isinstance(error, expected.type), (
            f"expected {expected.type.__name__}, got {type(error).__name__}: {message}"
        )
        assert re.match(expected.who + r"(?![\w])", message), f"message does not start with {expected.who!r}: {message}"
        assert re.search(expected.names, message), f"message does not name {expected.names!r}: {message}"
        assert re.search(expected.fix, message), f"message gives no fix like {expected.fix!r}: {message}"

    def assert_close(self, values: Any, expected: Any, dtype_name: str, scale: float = 1.0) -> None:
        """``values`` are ``expected`` (NaN where it is NaN) to the tolerance of ``dtype_name``, the absolute one times ``scale``."""
        tolerance = self.tolerance[dtype_name]
        np.testing.assert_allclose(values, expected, rtol=tolerance, atol=tolerance * scale, equal_nan=True)

    def run(self, call: Callable[[], Any], expected: Raises | Gives) -> None:
        """One case: the call gives the value ``expected`` checks, or raises the error it describes."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = call()
        except Exception as error:  # every error of the sweep is checked by the same rules
            if isinstance(expected, Gives):
                message = self.message_of(error)
                raise AssertionError(f"expected a value, got {type(error).__name__}: {message}") from error
            self.check_error(error, expected)
            return
        assert isinstance(expected, Gives), f"expected {expected.type.__name__}, got the value {result!r}"
        expected.check(result)

    # --- the tests a sweep module binds -------------------------------------------------------------

    def test_bad_input(self) -> Callable[[Callable[[], Any], Raises | Gives], None]:
        """The test of every case, one test id a case (``test_bad_input[name]``)."""

        @pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::UserWarning")
        @pytest.mark.parametrize("call, expected", self.cases)
        def test_bad_input(call: Callable[[], Any], expected: Raises | Gives) -> None:
            self.run(call, expected)

        return test_bad_input

    def test_the_sweep_is_large(self, *, values: int, errors: int) -> Callable[[], None]:
        """The test that case names are unique and the sweep has at least ``values`` values and ``errors`` errors."""

        def test_the_sweep_is_large() -> None:
            got_values = sum(kind == "value" for _, kind in self.collected)
            got_errors = sum(kind == "error" for _, kind in self.collected)
            assert len({name for name, _ in self.collected}) == len(self.collected), "case names are unique"
            assert got_values >= values and got_errors >= errors, (got_values, got_errors)

        return test_the_sweep_is_large
