# SPDX-License-Identifier: MIT
"""The gradwatch package's own build backend (PEP 517 and PEP 660), so that
`pip install ./client_lib/python` needs nothing from the network: pip's
isolated build installs the backend's requirements first, and this one,
standard library only, has none (pyproject.toml names it, from this
folder).  It reads the metadata from pyproject.toml's [project] table and
writes the wheel itself.

The wheel bundles libgradwatch when one is at hand: $GRADWATCH_LIB, else
the checkout's build/libgradwatch.so.0 (run `make` first).  With it the
wheel is platform-specific, py3-none-<platform> (ctypes: any Python 3,
no ABI); without it, pure Python (py3-none-any), and the package finds
the library at run time ($GRADWATCH_LIB or the system's library path).
An editable install (pip install -e) points Python at this folder."""
import base64
import hashlib
import io
import os
import re
import sysconfig
import tarfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE = "gradwatch"
LIB_NAME = "libgradwatch.so.0"

__all__ = [
    "build_wheel", "build_sdist", "build_editable", "get_requires_for_build_wheel",
    "get_requires_for_build_sdist", "get_requires_for_build_editable",
]


# ---- the metadata ------------------------------------------------------------

def _toml_value(text):
    """A TOML value of the kinds pyproject.toml uses here: strings, arrays
    of strings and inline tables of strings (Python < 3.11 has no tomllib)."""
    text = text.strip()
    if text.startswith("["):
        return re.findall(r'"((?:[^"\\]|\\.)*)"', text)
    if text.startswith("{"):
        return dict(re.findall(r'([A-Za-z0-9_-]+)\s*=\s*"((?:[^"\\]|\\.)*)"', text))
    m = re.match(r'"((?:[^"\\]|\\.)*)"', text)
    if m:
        return m.group(1)
    raise ValueError("pyproject.toml: cannot read %r" % text)


def _toml_subset(text):
    """Tables of key = value lines; an array may span lines."""
    doc, table, pending = {}, {}, None
    for raw in text.splitlines():
        line = raw.strip()
        if pending is not None:
            pending[1] += " " + line
            if "]" in line:
                table[pending[0]] = _toml_value(pending[1])
                pending = None
            continue
        if not line or line.startswith("#"):
            continue
        m = re.match(r"\[([A-Za-z0-9_.-]+)\]$", line)
        if m:
            table = doc
            for part in m.group(1).split("."):
                table = table.setdefault(part, {})
            continue
        key, _, value = line.partition("=")
        key = key.strip().strip('"')
        if value.strip().startswith("[") and "]" not in value:
            pending = [key, value]
        else:
            table[key] = _toml_value(value)
    return doc


def _project():
    """pyproject.toml's [project] table."""
    path = os.path.join(HERE, "pyproject.toml")
    try:
        import tomllib
        with open(path, "rb") as f:
            return tomllib.load(f)["project"]
    except ImportError:
        with open(path, encoding="utf-8") as f:
            return _toml_subset(f.read())["project"]


def _metadata(project):
    """The METADATA file (core metadata 2.1)."""
    lines = [
        "Metadata-Version: 2.1",
        "Name: %s" % project["name"],
        "Version: %s" % project["version"],
        "Summary: %s" % project.get("description", ""),
    ]
    lic = project.get("license")
    if isinstance(lic, dict) and lic.get("text"):
        lines.append("License: %s" % lic["text"])
    if project.get("requires-python"):
        lines.append("Requires-Python: %s" % project["requires-python"])
    for c in project.get("classifiers", []):
        lines.append("Classifier: %s" % c)
    for dep in project.get("dependencies", []):
        lines.append("Requires-Dist: %s" % dep)
    for extra, deps in sorted(project.get("optional-dependencies", {}).items()):
        lines.append("Provides-Extra: %s" % extra)
        for dep in deps:
            lines.append('Requires-Dist: %s ; extra == "%s"' % (dep, extra))
    body = ""
    readme = project.get("readme")
    if readme:
        with open(os.path.join(HERE, readme), encoding="utf-8") as f:
            body = f.read()
        lines.append("Description-Content-Type: text/markdown")
    return ("\n".join(lines) + "\n\n" + body).encode("utf-8")


# ---- the files ------------------------------------------------------------

def _library():
    """The libgradwatch to bundle, or None."""
    env = os.environ.get("GRADWATCH_LIB")
    if env and os.path.exists(env):
        return os.path.realpath(env)
    lib = os.path.join(HERE, "..", "..", "build", LIB_NAME)
    return os.path.realpath(lib) if os.path.exists(lib) else None


def _package_files():
    """(name in the wheel, path) of the package's own files."""
    out = []
    top = os.path.join(HERE, PACKAGE)
    for name in sorted(os.listdir(top)):
        path = os.path.join(top, name)
        if os.path.isfile(path) and (name.endswith(".py") or name == "py.typed"):
            out.append(("%s/%s" % (PACKAGE, name), path))
    return out


def _platform_tag():
    return re.sub(r"[^A-Za-z0-9_]", "_", sysconfig.get_platform())


def _stamp():
    """The files' time in archives: $SOURCE_DATE_EPOCH when set (reproducible)."""
    try:
        return max(315532800, int(os.environ["SOURCE_DATE_EPOCH"]))
    except (KeyError, ValueError):
        return int(time.time())


class _Wheel:
    """A wheel being written: each file is added with its RECORD line."""

    def __init__(self, path, stamp):
        self.zip = zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED)
        self.date = time.gmtime(stamp)[:6]
        self.record = []

    def add(self, name, data, mode=0o644):
        info = zipfile.ZipInfo(name, self.date)
        info.external_attr = (0o100000 | mode) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        self.zip.writestr(info, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        self.record.append("%s,sha256=%s,%d" % (name, digest.decode(), len(data)))

    def close(self, record_name):
        self.record.append("%s,," % record_name)
        info = zipfile.ZipInfo(record_name, self.date)
        info.external_attr = 0o100644 << 16
        self.zip.writestr(info, "\n".join(self.record) + "\n", zipfile.ZIP_DEFLATED)
        self.zip.close()


def _build(wheel_directory, editable):
    project = _project()
    name, version = project["name"], project["version"]
    lib = None if editable else _library()
    tag = "py3-none-%s" % _platform_tag() if lib else "py3-none-any"
    dist = "%s-%s" % (name, version)
    filename = "%s-%s.whl" % (dist, tag)
    info = dist + ".dist-info"
    path = os.path.join(wheel_directory, filename)
    w = _Wheel(path + ".tmp", _stamp())
    try:
        if editable:
            w.add("%s.pth" % name, (HERE + "\n").encode())
        else:
            for arc, src in _package_files():
                with open(src, "rb") as f:
                    w.add(arc, f.read())
            if lib:
                with open(lib, "rb") as f:
                    w.add("%s/%s" % (PACKAGE, LIB_NAME), f.read(), 0o755)
        w.add(info + "/METADATA", _metadata(project))
        w.add(info + "/WHEEL", ("Wheel-Version: 1.0\nGenerator: gradwatch-gwbuild\n"
                                "Root-Is-Purelib: %s\nTag: %s\n" % ("false" if lib else "true", tag)).encode())
        w.add(info + "/top_level.txt", (PACKAGE + "\n").encode())
        w.close(info + "/RECORD")
        os.replace(path + ".tmp", path)
    finally:
        if os.path.exists(path + ".tmp"):
            os.unlink(path + ".tmp")
    return filename


# ---- PEP 517 and PEP 660 ----------------------------------------------------

def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    """Write the wheel into wheel_directory; its file name."""
    return _build(wheel_directory, editable=False)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    """A wheel whose .pth file puts this folder on Python's path."""
    return _build(wheel_directory, editable=True)


def build_sdist(sdist_directory, config_settings=None):
    """The source: pyproject.toml, this backend, the README and the package."""
    project = _project()
    base = "%s-%s" % (project["name"], project["version"])
    filename = base + ".tar.gz"
    stamp = _stamp()
    files = [("pyproject.toml", os.path.join(HERE, "pyproject.toml")),
             ("gwbuild.py", os.path.abspath(__file__)),
             ("README.md", os.path.join(HERE, "README.md"))] + _package_files()

    def add(tar, arc, data):
        ti = tarfile.TarInfo("%s/%s" % (base, arc))
        ti.size, ti.mtime, ti.mode = len(data), stamp, 0o644
        tar.addfile(ti, io.BytesIO(data))

    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for arc, src in files:
            with open(src, "rb") as f:
                add(tar, arc, f.read())
        add(tar, "PKG-INFO", _metadata(project))
    return filename
