"""`platform/` is a source root, not a package: the standard library module must win."""

import platform
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_platform_is_the_standard_library_module() -> None:
    assert callable(platform.system)
    assert platform.system()
    assert uuid.uuid4().version == 4
    assert not (ROOT / "platform" / "__init__.py").exists()


def test_platform_on_sys_path_does_not_shadow_stdlib() -> None:
    code = (
        "import sys; sys.path.insert(0, 'platform'); sys.path.insert(0, '.');"
        "import platform, uuid, django, fireflow;"
        "print(platform.system(), uuid.uuid4().version)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == [platform.system(), "4"]
