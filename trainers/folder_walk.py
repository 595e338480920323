"""The image files under folder:PATH, found by a bounded walk that refuses what is no dataset.

A PATH that is the filesystem root, the home folder or a system tree is refused before walking
(`folder:/` would decode every PNG on the machine). The walk skips hidden entries, does not
follow links to folders (no loops), and stops past MAX_ENTRIES entries or MAX_DEPTH levels.
"""

from __future__ import annotations

import os
from pathlib import Path

from trainers import data_limits
from trainers.data_limits import DatasetError
from trainers.image_codec import IMAGE_EXTENSIONS

HINT = "point folder: at the folder that holds the images (one subfolder per class)"
SYSTEM_FOLDERS = ("/proc", "/sys", "/dev", "/run", "/boot", "/etc", "/usr", "/bin", "/sbin",
                  "/lib", "/var")
SYSTEM_TREES = ("/proc/", "/sys/", "/dev/")  # nothing under these is a dataset


def refuse_root(path: str) -> None:
    """Refuse `path`, in one line naming it, when it (or the folder it links to) is `/`, the
    home folder itself, one of SYSTEM_FOLDERS or under one of SYSTEM_TREES."""
    given, target = os.path.abspath(path), os.path.realpath(path)
    for where in dict.fromkeys((given, target)):
        if why := _not_a_dataset(where):
            links = "" if where == given else f" (it links to {where})"
            raise DatasetError(f"{path}: is {why}{links}, not an image dataset: {HINT}")


def _not_a_dataset(where: str) -> str | None:
    """Why the absolute path `where` is no image folder, or None."""
    home = os.path.expanduser("~")
    if where == "/":
        return "the filesystem root"
    if where in (os.path.abspath(home), os.path.realpath(home)):
        return "the home folder"
    if where in SYSTEM_FOLDERS or where.startswith(SYSTEM_TREES):
        return "a system folder"
    return None


def image_files(root: Path) -> list[str]:
    """PNG/JPEG files under `root` as sorted posix names relative to it. Hidden entries
    (.cache/...) are not data; links to files count, links to folders are not followed."""
    found: list[str] = []
    seen = 0
    stack = [(str(root), "", 0)]  # (folder, its posix name relative to root, depth)
    while stack:
        folder, rel, depth = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError:  # unreadable, or gone since it was listed: skipped, as Path.rglob does
            continue
        seen += len(entries)
        if seen > data_limits.MAX_ENTRIES:
            raise DatasetError(f"{root}: more than {data_limits.MAX_ENTRIES} files and folders "
                               f"under it: {HINT}")
        for entry in entries:
            if entry.name.startswith("."):
                continue
            name = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_dir(follow_symlinks=False):
                if depth >= data_limits.MAX_DEPTH:
                    raise DatasetError(f"{root}: folders nested more than "
                                       f"{data_limits.MAX_DEPTH} deep under it: {HINT}")
                stack.append((entry.path, name, depth + 1))
            elif entry.name.lower().endswith(IMAGE_EXTENSIONS) and entry.is_file():
                found.append(name)
    return sorted(found)
