"""What XLA compiles while a piece of code runs, for tests that a loop or a repeat call compiles nothing new."""

import jax


def compiled_names(run) -> list[str]:
    """The names of the programs XLA compiled while ``run()`` ran."""
    names: list[str] = []

    def listen(event: str, duration: float, **info) -> None:
        if event.endswith("backend_compile_duration"):
            names.append(str(info.get("fun_name")))

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        run()
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    return names
