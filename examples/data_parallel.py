"""Data-parallel training with tk.optimise: one problem on 1 device and on 8, the same answer.

The 8 devices are simulated CPU devices (``XLA_FLAGS`` is set below, before JAX
starts; on a machine with 8 accelerators drop that line). A linear model is
fitted to 4096 examples: the parameters are replicated on every device and the
examples split over a ``data`` axis, so each device computes the gradient of
its 512 examples and XLA sums them with one all-reduce per step. The 1-device
run is the same call with everything on ``jax.devices()[0]``.

    python examples/data_parallel.py
"""

import os

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"

import jax  # noqa: E402  (after XLA_FLAGS: JAX reads it when it starts)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import AxisType, NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import toolkit as tk  # noqa: E402

rng = np.random.default_rng(0)
x = rng.normal(size=(4096, 32)).astype(np.float32)
w_true = rng.normal(size=(32, 4)).astype(np.float32)
y = x @ w_true + 0.01 * rng.normal(size=(4096, 4)).astype(np.float32)
start = {"W": jnp.zeros((32, 4)), "b": jnp.zeros(4)}


def loss(params, batch):
    inputs, targets = batch
    return tk.mse(inputs @ params["W"] + params["b"], targets)


def fit(params, data):
    return tk.optimise(loss, params, tk.Adam(0.01), steps=500, data=data)


# One device: everything on the first.
one = jax.devices()[0]
single = fit(jax.device_put(start, one), jax.device_put((x[None], y[None]), one))  # one example: the whole batch

# Eight devices: parameters replicated, examples (axis 1 of the one full batch) split over 'data'.
mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))
params = jax.device_put(start, NamedSharding(mesh, P()))
data = jax.device_put((x[None], y[None]), NamedSharding(mesh, P(None, "data")))
sharded = fit(params, data)

print(f"devices: {jax.device_count()}")
print(f"1 device : loss {float(single.losses[-1]):.6f}, W[0] {np.round(np.asarray(single.params['W'][0]), 4)}")
print(f"8 devices: loss {float(sharded.losses[-1]):.6f}, W[0] {np.round(np.asarray(sharded.params['W'][0]), 4)}")
print(f"8-device W laid out as given: {sharded.params['W'].sharding.is_equivalent_to(params['W'].sharding, 2)}")
# The sum over examples runs in another order on 8 devices (8 partial sums), so agreement is to float precision.
# Arrays on different devices meet on the host (jax.device_get) to be compared.
print(f"agree: {bool(tk.tree.isapprox(*jax.device_get((single.params, sharded.params)), rtol=1e-4))}")
