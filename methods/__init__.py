"""Built-in methods, one module (or sub-package) each; `benchmark.registry.BUILTIN` lists them."""
