"""Adding a model, a metric or a GAN architecture is adding one file: each package imports all of its modules,
so a new file's registration runs without an import line elsewhere."""
import importlib
import pkgutil
import sys

import pytest


@pytest.mark.parametrize("package", ["dgm.models", "dgm.metrics", "dgm.models.gan_nets"])
def test_every_module_of_a_registering_package_is_imported(package):
    pkg = importlib.import_module(package)
    names = [m.name for m in pkgutil.iter_modules(pkg.__path__)]
    assert names, package
    missing = [n for n in names if f"{package}.{n}" not in sys.modules]
    assert missing == [], f"{package} does not import {missing}: their registrations would never run"
