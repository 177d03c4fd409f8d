"""Implicit parameters, as in Zygote: ``Param`` boxes, ``Params`` collections and the ``Grads`` they get.

In Julia an array is mutable, so ``Params([z])`` can remember ``z`` itself and
``gradient(() -> loss(x), ps)`` differentiates whatever the closure reads from
it. JAX arrays are immutable, so here the mutable thing is a box::

    z = tk.Param(jnp.ones((3, 3)))     # read it with z.value
    ps = tk.Params([z])
    gs = tk.gradient(lambda: jnp.sum(z.value ** 2), ps)
    gs[z]                              # the gradient for z's value
    tk.update_(opt, ps, gs)            # z.value changes in place

The explicit style (``tk.gradient(loss, model)``, ``tk.update``, ``tk.optimise``
on a pytree or struct) is the recommended one: Flux itself deprecated implicit
parameters, and a box read inside ``jax.jit`` is frozen at trace time. This mode
exists so Flux code translates line by line; ``tk.optimise`` accepts ``Params``
too (it reads the boxes once, runs compiled, and writes the final values back).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from toolkit._show import describe, shapes, short_repr

__all__ = ["Param", "Params", "Grads"]

T = TypeVar("T")


def _not_an_array(usage: str) -> Callable[..., Any]:
    def refuse(self: Param, *_: Any) -> Any:
        raise TypeError(
            f"tk.Param is a box, not an array: read its value first, e.g. write `{usage}` "
            f"(and `jnp.dot(z.value, x)`, not `jnp.dot(z, x)`)."
        )

    return refuse


def _what(x: Any) -> str:
    return f"a {type(x).__name__} ({describe(x)})" if hasattr(x, "dtype") else f"a {type(x).__name__}"


class Param:
    """A mutable box holding one parameter value (an array or any pytree).

    Read and write it through ``.value``. Boxes compare and hash by identity, so
    a ``Grads`` can be indexed by the box itself: ``gs[z]``.

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> z = tk.Param(jnp.zeros(2))
        >>> z.value = z.value + 1
        >>> z
        Param(f32[2] [1.0 1.0])
    """

    __slots__ = ("value", "__weakref__")

    def __init__(self, value: Any):
        self.value = value

    def __repr__(self) -> str:
        return f"Param({short_repr(self.value)})"

    # Arithmetic on the box itself is a mistake worth explaining, not a silent object array.
    __add__ = __radd__ = _not_an_array("z.value + x")
    __sub__ = __rsub__ = _not_an_array("z.value - x")
    __mul__ = __rmul__ = _not_an_array("z.value * x")
    __truediv__ = __rtruediv__ = _not_an_array("z.value / x")
    __matmul__ = __rmatmul__ = _not_an_array("z.value @ x")
    __pow__ = __rpow__ = _not_an_array("z.value ** 2")
    __neg__ = _not_an_array("-z.value")
    __getitem__ = _not_an_array("z.value[i]")
    __array__ = _not_an_array("np.asarray(z.value)")


class Params:
    """An ordered collection of ``Param`` boxes without duplicates (Zygote's ``Params``).

    ``tk.update_`` keeps each optimiser's state for these boxes in ``optimiser_states`` (keyed by the
    optimiser object's ``id``; the optimiser is held, so the id is not reused).

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> a, b = tk.Param(jnp.ones(2)), tk.Param(jnp.array(3.0))
        >>> ps = tk.Params([a, b, a])
        >>> len(ps), a in ps
        (2, True)
    """

    def __init__(self, params: Iterable[Param] = ()):
        if isinstance(params, Param) or not isinstance(params, Iterable):
            raise TypeError(
                f"tk.Params takes a list of tk.Param boxes, got {_what(params)}; write tk.Params([z]) "
                f"(with z = tk.Param(x)), or tk.Params([z1, z2]) for several."
            )
        self._boxes: list[Param] = []
        self.optimiser_states: dict[int, Any] = {}  # what tk.update_ keeps for these boxes, per optimiser object
        for p in params:
            self.append(p)

    def append(self, p: Param) -> None:
        """Add a box (Julia's ``push!``); a box already present is not added twice."""
        if not isinstance(p, Param):
            raise TypeError(
                f"tk.Params holds tk.Param boxes, got a {type(p).__name__}"
                f"{f' ({describe(p)})' if hasattr(p, 'dtype') else ''}. JAX arrays are immutable, so wrap the value "
                f"in a box and read it through the box: z = tk.Param(x), then tk.Params([z]); loss uses z.value."
            )
        if not any(p is q for q in self._boxes):
            self._boxes.append(p)

    def __len__(self) -> int:
        return len(self._boxes)

    def __iter__(self) -> Iterator[Param]:
        return iter(self._boxes)

    def __getitem__(self, i: int) -> Param:
        return self._boxes[i]

    def __contains__(self, p: object) -> bool:
        return any(p is q for q in self._boxes)

    def __repr__(self) -> str:
        return f"Params([{', '.join(map(repr, self._boxes))}])"

    def values(self) -> tuple[Any, ...]:
        """The boxes' current values, in order."""
        return tuple([p.value for p in self._boxes])

    def assign(self, values: Iterable[Any]) -> None:
        """Write ``values`` into the boxes, in order (one value per box)."""
        if not isinstance(values, Iterable):
            raise TypeError(f"tk.Params.assign: values must be a sequence with one value per box, got {_what(values)}.")
        values = tuple(values)
        if len(values) != len(self._boxes):
            raise ValueError(
                f"tk.Params.assign: got {len(values)} values for {len(self._boxes)} boxes; "
                f"pass one value per box, in order."
            )
        for p, v in zip(self._boxes, values):
            p.value = v

    def call_with(self, values: Iterable[Any], f: Callable[..., T], *args: Any) -> T:
        """``f(*args)`` with the boxes holding ``values`` for the duration of the call only.

        This is how an implicit-parameter closure becomes a function of explicit
        values, for ``jax.grad`` or a compiled loop; the old values come back
        afterwards even if ``f`` raises.

        Example:
            >>> import jax.numpy as jnp, toolkit as tk
            >>> z = tk.Param(jnp.array(1.0))
            >>> ps = tk.Params([z])
            >>> float(ps.call_with((jnp.array(5.0),), lambda: z.value * 2)), float(z.value)
            (10.0, 1.0)
        """
        if not callable(f):
            raise TypeError(
                f"tk.Params.call_with: f must be a function to call, such as lambda: loss(z.value); got {_what(f)}."
            )
        saved = self.values()
        self.assign(values)
        try:
            return f(*args)
        finally:
            self.assign(saved)


class Grads(Mapping):
    """Gradients for a ``Params``, indexed by box: ``gs[z]`` (``None`` where a box holds nothing differentiable).

    A box the closure never reads gets zeros, where Zygote gives ``nothing``:
    JAX does not tell an unused input from one whose gradient is zero.

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> z = tk.Param(jnp.array([1.0, 2.0]))
        >>> gs = tk.gradient(lambda: jnp.sum(z.value ** 2), tk.Params([z]))
        >>> gs[z]
        Array([2., 4.], dtype=float32)
        >>> gs
        Grads({Param(f32[2]): f32[2] [2.0 4.0]})
    """

    def __init__(self, params: Params, grads: Iterable[Any]):
        if not isinstance(params, Params) or not isinstance(grads, Iterable):
            raise TypeError(
                f"tk.Grads: params must be a tk.Params and grads a sequence, got {_what(params)} and {_what(grads)}; "
                f"a Grads is what tk.gradient(f, ps) returns."
            )
        grads = tuple(grads)
        if len(grads) != len(params):
            raise ValueError(
                f"tk.Grads: got {len(grads)} gradients for {len(params)} parameters; "
                f"pass one gradient per box of params."
            )
        self.params = params
        self._boxes = tuple(params)  # as they were: boxes appended to params later have no gradient here
        self._by_id = {id(p): g for p, g in zip(self._boxes, grads)}

    _call: tuple[Any, Callable[[Any], Iterable[Any]]] | None = None  # the deferred call these come from, if any

    @classmethod
    def later(cls, params: Params, deferred: Any, grads_of: Callable[[Any], Iterable[Any]]) -> Grads:
        """Grads worked out when first read, as ``grads_of(deferred.result())`` (see ``toolkit.deferred``)."""
        gs = cls.__new__(cls)
        gs.params, gs._boxes, gs._call = params, tuple(params._boxes), (deferred, grads_of)
        return gs

    def pending(self, params: Params) -> tuple[Any, Callable[[Any], Iterable[Any]]] | None:
        """``(deferred call, grads_of)`` if these come from a deferred call and are for exactly the boxes of
        ``params``, in order: ``tk.update_`` then runs that call inside its own program, read or not."""
        call = self._call
        return call if call is not None and tuple(params._boxes) == self._boxes else None

    def __getattr__(self, name: str) -> Any:  # only for attributes not set: the gradients of later Grads
        call = self.__dict__.get("_call")
        if name != "_by_id" or call is None:
            raise AttributeError(f"'Grads' object has no attribute {name!r}")
        deferred, grads_of = call
        self._by_id = {id(p): g for p, g in zip(self._boxes, grads_of(deferred.result()))}
        return self._by_id

    def in_order(self, params: Params) -> tuple[Any, ...] | None:
        """The gradients for the boxes of ``params``, in its order; ``None`` if one of them has none here."""
        boxes = tuple(params)
        if boxes == self._boxes:  # the usual case: the Params the gradient was taken with (boxes compare by identity)
            return tuple(self._by_id.values())
        if not all(id(p) in self._by_id and any(p is q for q in self._boxes) for p in boxes):
            return None
        return tuple(self._by_id[id(p)] for p in boxes)

    def __getitem__(self, p: Param) -> Any:
        if not any(p is q for q in self._boxes):
            raise KeyError(
                f"tk.Grads: {short_repr(p)} is not one of the Params this gradient was taken with; "
                f"add it to the Params passed to tk.gradient."
            )
        return self._by_id[id(p)]

    def __iter__(self) -> Iterator[Param]:
        return iter(self._boxes)

    def __len__(self) -> int:
        return len(self._boxes)

    def __repr__(self) -> str:
        """Each box, by its value's dtype and shape, and its gradient (dtype, shape and first values)."""
        items = ", ".join(f"Param({shapes(p.value)}): {short_repr(self._by_id[id(p)])}" for p in self._boxes)
        return f"Grads({{{items}}})"
