"""Benchmark drivers behind `dgm bench`: they train many ordinary runs and tabulate a metric over them.

The top layer beside the cli: a driver may import training, metrics and runs; nothing imports it back.
``modes``: mode collapse of every GAN objective on toy mixtures.
"""
