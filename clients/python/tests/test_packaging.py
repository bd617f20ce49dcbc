"""Packaging: the committed generated code matches the schema, the Python enums match the
wire enums, and the package installs offline with pip into a venv over Debian's packages."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import tickwire
from tickwire.v1 import tickwire_pb2 as pb

from server import PASSWORD, USER

PKG = Path(__file__).resolve().parents[1]
REPO = PKG.parents[1]
SCHEMA = REPO / "proto" / "tickwire" / "v1" / "tickwire.proto"
REGENERATE = "protoc -I proto --python_out=clients/python proto/tickwire/v1/tickwire.proto"


def test_generated_module_matches_the_schema(tmp_path):
    protoc = os.environ.get("PROTOC") or shutil.which("protoc")
    assert protoc, "protoc not found: install Debian's protobuf-compiler (scripts/setup.sh)"
    subprocess.run([protoc, f"-I{REPO / 'proto'}", f"--python_out={tmp_path}", str(SCHEMA)],
                   check=True)
    fresh = (tmp_path / "tickwire" / "v1" / "tickwire_pb2.py").read_text()
    committed = (PKG / "tickwire" / "v1" / "tickwire_pb2.py").read_text()
    version = subprocess.run([protoc, "--version"], capture_output=True, text=True).stdout.strip()
    assert fresh == committed, (
        f"clients/python/tickwire/v1/tickwire_pb2.py is not what {version} makes of "
        f"{SCHEMA.relative_to(REPO)}: regenerate it from the repository root with\n  {REGENERATE}"
    )


def test_python_enums_match_the_wire_enums():
    wire_codes = {v.name: v.number for v in pb.ErrorCode.DESCRIPTOR.values}
    assert wire_codes == {c.name: c.value for c in tickwire.ErrorCode}
    wire_modes = {v.name: v.number for v in pb.Mode.DESCRIPTOR.values if v.number != 0}
    assert wire_modes == {f"MODE_{m.name}": m.value for m in tickwire.Mode}


def run(cmd, **kwargs):
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{cmd} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
    return done.stdout


def test_pip_install_into_a_venv_works_offline(tmp_path, server, topic):
    # Installed from a copy, so the build's own files (build/, *.egg-info) stay out of the tree.
    src = tmp_path / "python"
    shutil.copytree(PKG, src, ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "__pycache__", ".pytest_cache"))
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--system-site-packages", venv])
    py = venv / "bin" / "python"
    run([py, "-m", "pip", "install", "--no-index", "--no-build-isolation", "--no-deps", "--quiet",
         src], env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    # The dependency is met by Debian's python3-protobuf, through the system site-packages.
    script = f"""
from importlib.metadata import requires, version
import tickwire
print(tickwire.__file__)
print(requires("tickwire")[0].replace(" ", ""), version("protobuf"))
with tickwire.Client("127.0.0.1", {server.port}, "{USER}", "{PASSWORD}") as c:
    c.subscribe("tick", ["{topic}"])
    c.publish([("{topic}", 1.5, 2.0)], ack=True)
    for t in c.records(timeout=5):
        print(t.topic, t.price, t.seq)
        break
"""
    out = run([py, "-c", script], cwd=tmp_path).splitlines()
    assert out[0].startswith(str(venv)), out  # the installed copy, not the source tree
    requirement, protobuf_version = out[1].split()
    assert requirement.replace("(", "").replace(")", "") == "protobuf>=3.21"
    assert tuple(int(x) for x in protobuf_version.split(".")[:2]) >= (3, 21)
    assert out[2] == f"{topic} 1.5 1"
