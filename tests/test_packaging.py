"""A non-editable install carries everything the package reads at run time: the wheel built
from the tracked files holds every subpackage and the defaults file, and the defaults are
found next to the installed code (not in a repository checkout)."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def tracked_copy(dest: Path) -> Path:
    """The repository's tracked files (what a clone has), copied to ``dest``."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        src = REPO / name
        if not src.exists():
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            target.symlink_to(src.readlink())
        else:
            shutil.copy2(src, target)
    return dest


def test_the_wheel_holds_every_subpackage_and_the_defaults(tmp_path):
    source = tracked_copy(tmp_path / "src")
    out = tmp_path / "dist"
    code = ("import sys; from setuptools import build_meta; "
            f"print(build_meta.build_wheel({str(out)!r}))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=source, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    wheel = out / proc.stdout.strip().splitlines()[-1]
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = sorted(p.parent.relative_to(source).as_posix() for p in (source / "fastposegait").rglob("__init__.py"))
    assert "fastposegait/recognition" in packages and "fastposegait/commands" in packages
    missing = [p for p in packages if f"{p}/__init__.py" not in names]
    assert not missing, f"subpackages left out of the wheel: {missing}"
    assert "fastposegait/config/default.yaml" in names
    assert "fastposegait/py.typed" in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "fastposegait = fastposegait.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_defaults_are_read_from_the_package(tmp_path, monkeypatch):
    from fastposegait.config.loading import default_config_path

    monkeypatch.chdir(tmp_path)  # no configs/ here
    path = default_config_path()
    assert path == REPO / "fastposegait" / "config" / "default.yaml"
    assert (REPO / "configs" / "default.yaml").resolve() == path  # the repository's copy is a link


def test_the_public_inference_names_resolve():
    import fastposegait

    for name in fastposegait.__all__:
        obj = getattr(fastposegait, name)
        assert name == "__version__" or obj.__name__ == name
    assert fastposegait.GaitRecognizer.__module__ == "fastposegait.recognition.recognizer"
    try:
        fastposegait.NoSuchThing
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("an unknown name must raise AttributeError")
