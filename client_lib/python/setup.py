# SPDX-License-Identifier: MIT
"""Build step of the gradwatch package (the metadata is in pyproject.toml):
bundle libgradwatch into the package when one is at hand, so that an
installed package needs neither the checkout nor `make install`.  The
library comes from $GRADWATCH_LIB, else the checkout's build/ (run
`make` first); without one the package is pure Python and finds the
library at run time ($GRADWATCH_LIB or the system's library path)."""
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))


def built_library():
    env = os.environ.get("GRADWATCH_LIB")
    if env and os.path.exists(env):
        return env
    lib = os.path.join(HERE, "..", "..", "build", "libgradwatch.so.0")
    return lib if os.path.exists(lib) else None


class BuildPy(build_py):
    def run(self):
        super().run()
        lib = built_library()
        if lib is not None:
            dest = os.path.join(self.build_lib, "gradwatch", "libgradwatch.so.0")
            shutil.copyfile(os.path.realpath(lib), dest)
            os.chmod(dest, 0o755)


class MaybeBinary(Distribution):
    """A wheel with a bundled library is platform-specific."""

    def has_ext_modules(self):
        return built_library() is not None


setup(cmdclass={"build_py": BuildPy}, distclass=MaybeBinary)
