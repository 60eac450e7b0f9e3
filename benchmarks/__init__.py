"""The benchmark suite of DESIGN §6: ``python -m benchmarks run --engine postgresql``."""
