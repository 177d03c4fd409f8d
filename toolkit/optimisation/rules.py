"""Flux's classic optimisers (``Descent``, ``Momentum``, ``Nesterov``, ``Adam``) built from optax parts.

Each constructor takes Flux's hyperparameters and defaults and returns a :class:`Rule`,
an ``optax.GradientTransformation`` (the same ``init``/``update`` pair) that also
remembers how it was made, so it works anywhere optax does and any optax
transformation works wherever these do. The update rules are the ones in
``Flux.Optimise`` (``src/optimise/optimisers.jl``), where ``Δ`` is the gradient:

=============  ===============================================================
``Descent``    ``x -= η Δ``
``Momentum``   ``v = ρ v - η Δ;  x += v``
``Nesterov``   ``d = ρ² v - (1 + ρ) η Δ;  v = ρ v - η Δ;  x += d``
``Adam``       ``m = β₁ m + (1 - β₁) Δ;  s = β₂ s + (1 - β₂) Δ²;``
               ``x -= η m̂ / (√ŝ + ϵ)`` with ``m̂ = m / (1 - β₁ᵗ)``, ``ŝ = s / (1 - β₂ᵗ)``
=============  ===============================================================

Flux's ``Momentum`` scales by ``η`` *before* accumulating the velocity, so under
a learning-rate schedule it is not ``optax.sgd(η, momentum=ρ)`` (which scales
after); it is exactly ``optax.chain(optax.scale_by_learning_rate(η), optax.trace(decay=ρ))``.

**Names.** The signatures use the ASCII names ``eta``, ``rho``, ``beta`` and
``epsilon``; Flux's Greek names ``η``, ``ρ``, ``β`` and ``ϵ`` are accepted as
keyword aliases. Any spelling Python treats as the same identifier (its NFKC
form) is the same alias, so both epsilons, ``ϵ`` (U+03F5, Flux's) and ``ε``
(U+03B5), work, whether written in source (``tk.Adam(ϵ=1e-6)``) or passed in a
dict (``tk.Adam(**{"ϵ": 1e-6})``). An unknown name, or a hyperparameter given
twice (positionally and by keyword, or under two of its names), is a
``TypeError`` that lists the accepted names.

**Values.** ``eta`` is a number, a 0-d array or an optax schedule (``step ->
rate``, called with optax's step count, 0 first); ``rho``, each of ``beta``'s two
entries and ``epsilon`` are numbers or 0-d arrays (to schedule them, use
``optax.inject_hyperparams``, below). Python numbers are stored as ``float``;
arrays are kept as given. Concrete values are checked (finite; ``rho`` in
``[0, 1]``; ``beta[i]`` in ``[0, 1)``; ``epsilon >= 0``); values traced by
``jax.jit``, ``jax.vmap`` or ``jax.grad`` have no value to check yet and are
passed to optax as they are. Booleans are refused.

**optax conventions.** ``optax.inject_hyperparams(tk.Adam)(eta=0.1)`` works for
every rule with the ASCII names; the injected values live in
``state.hyperparams`` and may be changed between steps. (On half-precision
parameters pass ``hyperparam_dtype=jnp.float32``: by default it stores them in
the parameters' dtype, where ``ϵ = 1e-8`` is 0.) A rule prints as it was made
(``Momentum(eta=0.01, rho=0.9)``), exposes its hyperparameters as attributes
(``opt.eta``, or ``opt.η``) and in ``opt.hyperparameters``, and compares and
hashes by rule and hyperparameters, so two ``tk.Adam(0.01)`` are equal and can
share a compiled step: numbers compare by value, arrays by dtype and value,
schedules by identity (a rule holding traced values compares by identity and
cannot be hashed).

**Half precision.** Adam keeps its moments, and adds ``ϵ``, in float32 for
float16 and bfloat16 (and narrower) parameters, and casts the update back to
the parameter's dtype: in float16 ``ϵ = 1e-8`` rounds to 0, so a zero gradient
would give ``0 / 0``. Flux, which computes the step in Float64 before storing
it, never divides by 0 either. Wider dtypes are computed in their own
precision, exactly as ``optax.adam``.
"""

from __future__ import annotations

import functools
import math
import numbers
import types
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
import optax

from toolkit import filters
from toolkit._show import short_repr

__all__ = ["Descent", "Momentum", "Nesterov", "Adam", "Rule"]

Scalar = float | jax.Array | np.ndarray
LearningRate = float | jax.Array | np.ndarray | Callable[[Any], Any]

_GREEK = {"eta": "η", "rho": "ρ", "beta": "β", "epsilon": "ϵ"}  # as Flux writes them, and as the docs show them
_SPELLINGS = {"epsilon": "ϵ, ε"}  # the aliases an error lists, where there is more than one
_FROM_GREEK = {unicodedata.normalize("NFKC", g): name for name, g in _GREEK.items()}  # ϵ normalises to ε


class _DefaultFloat(float):
    """A default that shows as a plain number in signatures but is known not to be user-given."""


class _DefaultPair(tuple):
    """The tuple counterpart of :class:`_DefaultFloat`."""


def _given(value: Any) -> bool:
    return not isinstance(value, (_DefaultFloat, _DefaultPair))


# --- a rule: an optax GradientTransformation that knows its name and hyperparameters ------------------------


class _Spec:
    """A rule's name and hyperparameters, compared and hashed by value (schedules and traced values by identity)."""

    __slots__ = ("name", "values")

    def __init__(self, name: str, values: dict[str, Any]) -> None:
        self.name, self.values = name, values

    def key(self) -> tuple[Any, ...]:
        return (self.name, tuple((k, _key(v)) for k, v in self.values.items()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Spec) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())


class _Same:
    """Compares by identity: a schedule, or a traced value (which then makes the rule unhashable)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and self.value is other.value

    def __hash__(self) -> int:
        if not callable(self.value):
            raise TypeError(
                "unhashable optimiser: a hyperparameter is traced (built inside jit, vmap or grad); "
                "build the optimiser outside the transformation to use it as a key."
            )
        return hash(id(self.value))


def _key(value: Any) -> Any:
    if isinstance(value, float):
        return value
    if isinstance(value, tuple):
        return tuple(map(_key, value))
    if callable(value):
        return _Same(value)
    known = filters.concrete(value)
    if known is None:
        return _Same(value)
    return (str(known.dtype), bool(getattr(value, "weak_type", False)), known.item())


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(map(_show, value)) + ")"
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType)):
        return value.__qualname__  # a schedule by its name, e.g. linear_schedule.<locals>.schedule
    return repr(value)


class Rule(optax.GradientTransformation):
    """The ``optax.GradientTransformation`` that ``tk.Descent``, ``tk.Momentum``, ``tk.Nesterov`` and ``tk.Adam`` return.

    It is the optax ``(init, update)`` named tuple, unchanged, that also knows the
    rule's name (``opt.rule``) and hyperparameters (``opt.hyperparameters``, and
    ``opt.eta`` or ``opt.η`` for each); it prints as the call that makes it and
    compares and hashes by rule and hyperparameters (see the module docstring). It
    is immutable: build a new rule, or use ``optax.inject_hyperparams``, to change
    a hyperparameter.

    Example:
        >>> import optax, toolkit as tk
        >>> opt = tk.Adam(eta=0.1)
        >>> opt, opt.eta, opt.β
        (Adam(eta=0.1, beta=(0.9, 0.999), epsilon=1e-08), 0.1, (0.9, 0.999))
        >>> isinstance(opt, optax.GradientTransformation), opt == tk.Adam(0.1), opt == tk.Adam(0.2)
        (True, True, False)
    """

    def __new__(
        cls, init: Any, update: Any, rule: str | None = None, hyperparameters: Mapping[str, Any] | None = None
    ) -> Rule:
        self = super().__new__(cls, init, update)
        self.__dict__["_spec"] = None if rule is None else _Spec(rule, dict(hyperparameters or {}))
        return self

    @property
    def rule(self) -> str | None:
        """The rule's name, e.g. ``"Adam"``."""
        spec = self.__dict__.get("_spec")
        return None if spec is None else spec.name

    @property
    def hyperparameters(self) -> Mapping[str, Any]:
        """The hyperparameters by their ASCII names, as validated (a read-only mapping)."""
        spec = self.__dict__.get("_spec")
        return types.MappingProxyType({} if spec is None else spec.values)

    def __getattr__(self, name: str) -> Any:  # only called where normal lookup fails: the hyperparameters
        spec = self.__dict__.get("_spec")
        normal = unicodedata.normalize("NFKC", name)
        canonical = _FROM_GREEK.get(normal, normal)
        if spec is not None and canonical in spec.values:
            return spec.values[canonical]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *self.hyperparameters]

    def __setattr__(self, name: str, value: Any) -> None:
        if self.rule is None:
            raise AttributeError(f"toolkit.optimisation.Rule is immutable: cannot set {name}.")
        raise AttributeError(
            f"tk.{self.rule}: an optimiser is immutable; build a new one (e.g. tk.{self.rule}({name}=...)) or use "
            f"optax.inject_hyperparams(tk.{self.rule}) to change {name} between steps."
        )

    def __delattr__(self, name: str) -> None:
        self.__setattr__(name, None)

    def __repr__(self) -> str:
        spec = self.__dict__.get("_spec")
        if spec is None:
            return f"{type(self).__name__}(init={self.init!r}, update={self.update!r})"
        return f"{spec.name}({', '.join(f'{k}={_show(v)}' for k, v in spec.values.items())})"

    def __eq__(self, other: object) -> bool:
        mine, theirs = self.__dict__.get("_spec"), getattr(other, "__dict__", {}).get("_spec")
        if isinstance(other, Rule) and mine is not None and theirs is not None:
            return mine == theirs
        return tuple.__eq__(self, other)  # type: ignore[arg-type]  # as optax's named tuple: the same functions

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        spec = self.__dict__.get("_spec")
        return tuple.__hash__(self) if spec is None else hash(spec)

    def _replace(self, **fields: Any) -> optax.GradientTransformation:  # type: ignore[override]
        # other functions are another transformation: it no longer is this rule
        return optax.GradientTransformation(**{**self._asdict(), **fields})


jax.tree_util.register_pytree_node(
    Rule,
    lambda r: ((r.init, r.update), r.__dict__.get("_spec")),
    lambda spec, children: Rule(
        *children, *(() if spec is None else (spec.name, spec.values))
    ),  # jax.tree.map keeps what it is
)


def _rule(name: str, tx: optax.GradientTransformation, **hyperparameters: Any) -> Rule:
    return Rule(tx.init, tx.update, name, hyperparameters)


# --- hyperparameter names ------------------------------------------------------------------------------------

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _hyperparameters(f: Callable[_P, _R]) -> Callable[_P, _R]:
    """A rule constructor that says which hyperparameter was given twice (positionally and by keyword)."""
    names = [n for n in f.__code__.co_varnames[: f.__code__.co_argcount]]

    @functools.wraps(f)
    def constructor(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        for name, value in zip(names, args):
            if name in kwargs:
                raise TypeError(
                    f"tk.{f.__name__}: got {name} ({_GREEK[name]}) twice, positionally ({short_repr(value)}) and as "
                    f"{name}={short_repr(kwargs[name])}; pass only one of them."
                )
        return f(*args, **kwargs)

    return constructor


def _resolve(rule: str, given: dict[str, Any], aliases: dict[str, Any]) -> dict[str, Any]:
    """Merge the Greek (or other) aliases into the ASCII-named hyperparameters, refusing unknown or doubled names."""
    spelled = {name: name for name, value in given.items() if _given(value)}
    values = dict(given)
    for alias, value in aliases.items():
        if alias == "aliases" and isinstance(value, Mapping):  # optax.inject_hyperparams passes **aliases as one
            if value:
                ascii_names = [_FROM_GREEK.get(unicodedata.normalize("NFKC", k), k) for k in value]
                raise TypeError(
                    f"tk.{rule}: optax.inject_hyperparams passes hyperparameters by their ASCII names; write "
                    f"{', '.join(f'{n}=' for n in ascii_names)} in place of {', '.join(f'{k}=' for k in value)}."
                )
            continue
        normal = unicodedata.normalize("NFKC", alias)
        name = _FROM_GREEK.get(normal, normal)
        if name not in given:
            accepted = ", ".join(f"{n} (or {_SPELLINGS.get(n, _GREEK[n])})" for n in given)
            example = ", ".join(f"{n}={_show(given[n])}" for n in given)
            raise TypeError(
                f"tk.{rule}: unknown hyperparameter {alias!r}; tk.{rule} takes {accepted}. "
                f"Example: tk.{rule}({example})"
            )
        if name in spelled:
            first = values[name]
            raise TypeError(
                f"tk.{rule}: got {name} ({_GREEK[name]}) twice, as {spelled[name]}={short_repr(first)} and as "
                f"{alias}={short_repr(value)}; pass only one of them."
            )
        spelled[name], values[name] = alias, value
    return values


# --- hyperparameter values -----------------------------------------------------------------------------------


def _scalar(rule: str, name: str, value: Any, requirement: str, example: str) -> tuple[Any, float | None]:
    """``value`` as a ``float`` (a Python number) or the 0-d array itself, and its value (``None`` when traced)."""

    def refuse() -> ValueError:
        return ValueError(f"tk.{rule}: {name} must be {requirement}, got {short_repr(value)}; e.g. {example}.")

    if isinstance(value, (bool, np.bool_)):
        raise refuse()
    if isinstance(value, numbers.Real):
        number = float(value)
        return number, number
    dtype = getattr(value, "dtype", None)
    if dtype is None or np.shape(value) != ():
        raise refuse()
    try:
        real = bool(jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer))
    except TypeError:  # a dtype JAX does not know
        real = False
    if not real:
        raise refuse()  # booleans, complex numbers, PRNG keys
    known = filters.concrete(value)
    return value, None if known is None else float(known)


def _rate(rule: str, eta: Any) -> Any:
    if callable(eta):
        return eta  # an optax schedule: step -> learning rate
    requirement = "a finite number (a Python number or a 0-d array) or an optax schedule (step -> rate)"
    example = "eta=0.1 (η=0.1), or eta=optax.linear_schedule(0.1, 0.01, 1000)"
    value, known = _scalar(rule, "eta (η)", eta, requirement, example)
    if known is not None and not math.isfinite(known):
        raise ValueError(f"tk.{rule}: eta (η) must be {requirement}, got {short_repr(eta)}; e.g. {example}.")
    return value


def _unit(rule: str, name: str, value: Any, *, closed: bool, example: str) -> Scalar:
    interval = "[0, 1]" if closed else "[0, 1)"
    requirement = f"a number in {interval} (a Python number or a 0-d array)"
    hint = example + (f"; to schedule it use optax.inject_hyperparams(tk.{rule})" if callable(value) else "")
    number, known = _scalar(rule, name, value, requirement, hint)
    if known is not None and not (0 <= known and (known <= 1 if closed else known < 1)):
        raise ValueError(f"tk.{rule}: {name} must be {requirement}, got {short_repr(value)}; e.g. {example}.")
    return number


def _epsilon(value: Any) -> Scalar:
    requirement = "a finite number >= 0 (a Python number or a 0-d array)"
    example = "Flux's default ϵ=1e-8 (epsilon=1e-8)"
    number, known = _scalar("Adam", "epsilon (ϵ)", value, requirement, example)
    if known is not None and not (0 <= known < math.inf):
        raise ValueError(f"tk.Adam: epsilon (ϵ) must be {requirement}, got {short_repr(value)}; e.g. {example}.")
    return number


# --- half precision ------------------------------------------------------------------------------------------


def _is_half(x: Any) -> bool:
    dtype = getattr(x, "dtype", None)
    return dtype is not None and jnp.issubdtype(dtype, jnp.floating) and jnp.finfo(dtype).bits < 32


def _widen(x: Any) -> Any:
    return x.astype(jnp.float32) if _is_half(x) else x


def _half_precision_in_float32(tx: optax.GradientTransformation) -> optax.GradientTransformation:
    """``tx`` with its state and arithmetic in float32 for half-precision leaves; updates cast back to their dtype."""

    def init(params: Any) -> Any:
        return tx.init(jax.tree.map(_widen, params))

    def update(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        wide, state = tx.update(jax.tree.map(_widen, updates), state, params)
        return jax.tree.map(lambda new, old: new.astype(old.dtype) if _is_half(old) else new, wide, updates), state

    return optax.GradientTransformation(init, update)


# --- the rules -----------------------------------------------------------------------------------------------


@_hyperparameters
def Descent(eta: LearningRate = _DefaultFloat(0.1), **aliases: Any) -> Rule:
    """Plain gradient descent, ``x -= η Δ`` (Flux's ``Descent``; default ``eta = η = 0.1``).

    ``eta`` (alias ``η``) is a number, a 0-d array or an optax schedule. Flux's
    ``Descent`` never checks for convergence: with too large an ``η`` it diverges
    if the loop is not stopped (``tk.optimise`` stops it and says so).

    Example:
        >>> import jax.numpy as jnp, optax, toolkit as tk
        >>> opt = tk.Descent(0.5)
        >>> opt, opt == tk.Descent(η=0.5)
        (Descent(eta=0.5), True)
        >>> x = jnp.array([1.0, 2.0])
        >>> x, state = tk.update(opt, tk.setup(opt, x), x, jnp.array([1.0, 1.0]))
        >>> x
        Array([0.5, 1.5], dtype=float32)
        >>> opt = optax.inject_hyperparams(tk.Descent)(eta=0.5)   # η in the state, to change between steps
        >>> state = opt.init(x)
        >>> state.hyperparams["eta"] = 0.25
        >>> x, state = tk.update(opt, state, x, jnp.array([1.0, 1.0]))
        >>> x
        Array([0.25, 1.25], dtype=float32)
    """
    h = _resolve("Descent", {"eta": eta}, aliases)
    rate = _rate("Descent", h["eta"])
    return _rule("Descent", optax.scale_by_learning_rate(rate), eta=rate)


@_hyperparameters
def Momentum(eta: LearningRate = _DefaultFloat(0.01), rho: Scalar = _DefaultFloat(0.9), **aliases: Any) -> Rule:
    """Flux's ``Momentum``: ``v = ρ v - η Δ; x += v`` (defaults ``eta = η = 0.01``, ``rho = ρ = 0.9``).

    Bitwise the same as ``optax.chain(optax.scale_by_learning_rate(η), optax.trace(decay=ρ))``.

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> tk.Momentum()
        Momentum(eta=0.01, rho=0.9)
        >>> opt = tk.Momentum(eta=0.1, ρ=0.5)
        >>> x, g = jnp.array(1.0), jnp.array(1.0)
        >>> state = tk.setup(opt, x)
        >>> x, state = tk.update(opt, state, x, g)   # v = -0.1
        >>> x, state = tk.update(opt, state, x, g)   # v = 0.5 * -0.1 - 0.1
        >>> round(float(x), 6)
        0.75
    """
    h = _resolve("Momentum", {"eta": eta, "rho": rho}, aliases)
    rate, decay = _rate("Momentum", h["eta"]), _unit("Momentum", "rho (ρ)", h["rho"], closed=True, example="rho=0.9")
    return _rule(
        "Momentum",
        optax.chain(optax.scale_by_learning_rate(rate), optax.trace(decay=decay)),
        eta=rate,
        rho=decay,
    )


@_hyperparameters
def Nesterov(eta: LearningRate = _DefaultFloat(0.001), rho: Scalar = _DefaultFloat(0.9), **aliases: Any) -> Rule:
    """Flux's ``Nesterov``: ``d = ρ² v - (1 + ρ) η Δ; v = ρ v - η Δ; x += d`` (defaults ``eta = 0.001``, ``rho = 0.9``).

    Example:
        >>> import jax, jax.numpy as jnp, toolkit as tk
        >>> opt = tk.Nesterov(0.1, 0.5)
        >>> x = jnp.array(1.0)
        >>> x, _ = tk.update(opt, tk.setup(opt, x), x, jnp.array(1.0))   # d = -(1 + 0.5) * 0.1
        >>> round(float(x), 6)
        0.85
        >>> def first_step(ρ):   # ρ traced by vmap below: one first step for each
        ...     opt = tk.Nesterov(0.1, ρ)
        ...     return tk.update(opt, tk.setup(opt, 1.0), 1.0, 1.0)[0]
        >>> jax.vmap(first_step)(jnp.array([0.0, 0.5])).round(6)
        Array([0.9 , 0.85], dtype=float32)
    """
    h = _resolve("Nesterov", {"eta": eta, "rho": rho}, aliases)
    rate, decay = _rate("Nesterov", h["eta"]), _unit("Nesterov", "rho (ρ)", h["rho"], closed=True, example="rho=0.9")
    return _rule(
        "Nesterov",
        optax.chain(optax.scale_by_learning_rate(rate), optax.trace(decay=decay, nesterov=True)),
        eta=rate,
        rho=decay,
    )


@_hyperparameters
def Adam(
    eta: LearningRate = _DefaultFloat(0.001),
    beta: tuple[Scalar, Scalar] = _DefaultPair((0.9, 0.999)),
    epsilon: Scalar = _DefaultFloat(1e-8),
    **aliases: Any,
) -> Rule:
    """Flux's ``Adam`` (Kingma & Ba, arXiv:1412.6980): defaults ``eta = 0.001``, ``beta = (0.9, 0.999)``, ``epsilon = 1e-8``.

    The aliases are ``η``, ``β`` and ``ϵ`` (or ``ε``). ``ϵ`` is added to ``√ŝ``
    (outside the square root), as in Flux and optax. For float16 and bfloat16
    parameters the moments are kept, and the step computed, in float32; the step
    is then rounded to the parameter's dtype (so a zero gradient moves nothing,
    where ``ϵ`` would round to 0 in float16 and give ``0 / 0``).

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> opt = tk.Adam(eta=0.1)
        >>> opt
        Adam(eta=0.1, beta=(0.9, 0.999), epsilon=1e-08)
        >>> x = jnp.array([1.0, -1.0])
        >>> x, _ = tk.update(opt, tk.setup(opt, x), x, jnp.array([3.0, -0.5]))
        >>> x.round(4)   # the first Adam step moves every coordinate by about η
        Array([ 0.9, -0.9], dtype=float32)
        >>> tk.Adam(**{"ϵ": 1e-6}) == tk.Adam(**{"ε": 1e-6}) == tk.Adam(epsilon=1e-6)
        True
        >>> h = jnp.array([1.0, 2.0], jnp.float16)
        >>> tk.update(opt, tk.setup(opt, h), h, jnp.zeros(2, jnp.float16))[0]   # no 0 / 0 in float16
        Array([1., 2.], dtype=float16)
    """
    h = _resolve("Adam", {"eta": eta, "beta": beta, "epsilon": epsilon}, aliases)
    beta = h["beta"]
    if not isinstance(beta, (tuple, list)) or len(beta) != 2:
        raise ValueError(
            f"tk.Adam: beta (β) must be a pair (β₁, β₂) such as beta=(0.9, 0.999), got {short_repr(beta)}."
        )
    b1, b2 = (
        _unit("Adam", f"beta[{i}] (β{'₁₂'[i]})", b, closed=False, example="beta=(0.9, 0.999)")
        for i, b in enumerate(beta)
    )
    rate, eps = _rate("Adam", h["eta"]), _epsilon(h["epsilon"])
    tx = _half_precision_in_float32(optax.adam(rate, b1=b1, b2=b2, eps=eps))
    return _rule("Adam", tx, eta=rate, beta=(b1, b2), epsilon=eps)
