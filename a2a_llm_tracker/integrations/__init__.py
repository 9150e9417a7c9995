"""Framework adapters: one module per framework, each importing its framework lazily."""

__all__: list[str] = []
