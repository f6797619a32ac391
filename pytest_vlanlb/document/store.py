"""The images every document sandbox starts with: a read-only podman store on the host,
holding the alpine stand-in under the name the documents use.

It is made once, by podman running as root of a user namespace with the sandboxes' ids
(`confinement.id_range`), so that its files belong to the sandbox's root as they would to a
rootless user's: a sandbox reads it as its own, and nothing else of the host is its own. Each
sandbox gets it bound read-only and locked (`confinement.spawn_mapped`), so a document cannot
write to it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import podman

from ..errors import PreflightError
from ..host.image import ImageRecipe, Progress, ensure_alpine_standin, node_image, standin_tag
from ..podman.api import connect
from ..podman.settings import containers_conf
from .confinement import Cgroups, IdRange, id_range, spawn_mapped

#: Where the sandboxes' read-only image stores live on the host (one per stand-in recipe).
IMAGE_CACHE = Path("/var/cache/vlanlb/sandbox-images")
#: The name the documents use; the stand-in is stored under it.
ALPINE = "docker.io/library/alpine:latest"
#: podman's settings while it makes a store: overlay, nothing of the host's configuration.
_STORAGE_CONF = '[storage]\ndriver = "overlay"\ngraphroot = "{root}"\nrunroot = "{run}"\n'
# Loads the archive and names the stand-in as the documents do, in a mount namespace of its
# own (overlay's checks mount; podman's locks live in /dev/shm, which is the host's).
_LOAD = (
    "mount -t tmpfs -o size=16m,nosuid,nodev shm /dev/shm && "
    'podman load -q -i "$ARCHIVE" && podman tag "$STANDIN" "$ALPINE"'
)


def image_store(standin: str, image_id: str = "", ids: IdRange | None = None) -> Path:
    """Where the sandboxes' store for this stand-in lives: by its tag (a hash of its recipe),
    by its image id too when it derives from an image of the user's (which may change under
    the same name), and by the ids that own it."""
    ids = ids or id_range()
    image = f"-{image_id[:12]}" if image_id else ""
    return IMAGE_CACHE / f"{standin.rpartition(':')[2]}{image}-u{ids.base}"


def ready_store(store: Path) -> Path | None:
    """The store's storage folder, if it was made completely."""
    return store / "storage" if (store / "ready").exists() else None


def ensure_image_store(client: podman.PodmanClient, standin: str, store: Path) -> Path:
    """A read-only image store for sandboxes, holding the stand-in as `alpine` (made once,
    about 5 s: a `podman save` and a load into a store of its own)."""
    if ready := ready_store(store):
        return ready
    image = client.images.get(standin)
    IMAGE_CACHE.mkdir(parents=True, exist_ok=True)
    with (IMAGE_CACHE / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs at once: the second waits, then reuses
        if ready := ready_store(store):
            return ready
        shutil.rmtree(store, ignore_errors=True)
        ids = id_range()
        store.mkdir()
        os.chown(store, ids.base, ids.base)
        with tempfile.TemporaryDirectory(prefix="vlanlb-store-") as tmp:
            work = Path(tmp)
            os.chown(work, ids.base, ids.base)
            archive = work / "image.tar"
            with archive.open("wb") as out:
                for chunk in image.save(named=True):
                    out.write(chunk)
            storage = _STORAGE_CONF.format(root=store / "storage", run=work / "run")
            (work / "storage.conf").write_text(storage)
            (work / "containers.conf").write_text(
                containers_conf({"engine": {"events_logger": "file", "tmp_dir": str(work / "tmp")}})
            )
            for path in work.iterdir():
                os.chown(path, ids.base, ids.base)
            _load(ids, work, store, standin)
        (store / "ready").write_text(standin)
        for old in IMAGE_CACHE.iterdir():
            if old.is_dir() and old != store:
                _remove_store(old)
    return store / "storage"


def _load(ids: IdRange, work: Path, store: Path, standin: str) -> None:
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(work),
        "CONTAINERS_STORAGE_CONF": str(work / "storage.conf"),
        "CONTAINERS_CONF": str(work / "containers.conf"),
        "ARCHIVE": str(work / "image.tar"),
        "STANDIN": standin,
        "ALPINE": ALPINE,
    }
    argv = ["unshare", "--mount", "--propagation=private", "sh", "-c", _LOAD]
    process = spawn_mapped(
        argv, ids, Cgroups(), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, err = process.communicate()
    if process.returncode != 0:
        shutil.rmtree(store, ignore_errors=True)
        raise PreflightError(
            f"preparing the sandbox's images failed: {err.decode(errors='replace').strip()}"
        )


def _remove_store(store: Path) -> None:
    # Overlay layers may still be mounted by a sandbox that is running: leave those.
    with contextlib.suppress(OSError):
        shutil.rmtree(store)


def document_image_store(image: str | None, progress: Progress) -> Path:
    """Document mode's read-only image store for its sandboxes. The host's podman is asked
    only when the store is not made yet, or for an image of the user's (`--vlanlb-image`)."""
    if image is None and (ready := ready_store(image_store(standin_tag(ImageRecipe().tag)))):
        return ready
    api = connect(None)
    try:
        client = api.client()
        standin = ensure_alpine_standin(client, node_image(client, image, progress), progress)
        image_id = str(client.images.get(standin).id) if image else ""
        return ensure_image_store(client, standin, image_store(standin, image_id))
    finally:
        api.stop()
