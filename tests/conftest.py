"""Shared test settings: hypothesis without deadlines (JAX compiles on first call)."""

import jax
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "toolkit",
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("toolkit")


@pytest.fixture
def x64():
    """Run the test body with 64-bit types enabled (finite differences, reference comparisons)."""
    with jax.enable_x64(True):
        yield
