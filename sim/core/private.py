"""Files only the balancer's user may read: the takeover key and the admin token.

A secret is worth what its file's permissions are worth. The key is refused if
anyone but its owner may read it (as ssh refuses a private key). The token is
written into a directory only this user can enter, created with O_EXCL and
O_NOFOLLOW, so that another local user can neither pre-create the file to
read it nor plant a symlink to make the balancer overwrite something else.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile

__all__ = [
    "MIN_KEY_BYTES",
    "PrivateFileError",
    "create_token_file",
    "private_dir",
    "read_key",
    "remove_token_file",
]

# HMAC-SHA256 keys shorter than the 32-byte output weaken it (RFC 2104 section 3:
# "less than L bytes is strongly discouraged"); 16 is the floor we accept.
MIN_KEY_BYTES = 16


class PrivateFileError(ValueError):
    """A secret file or directory that others could read, replace or redirect."""


def read_key(path: str) -> bytes:
    """The takeover key: the file's bytes, stripped of surrounding whitespace."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise PrivateFileError(f"{path}: no such file") from None
    except OSError as e:
        raise PrivateFileError(f"{path}: cannot open: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise PrivateFileError(f"{path}: not a regular file")
        if st.st_mode & 0o077:
            raise PrivateFileError(
                f"{path}: mode {stat.S_IMODE(st.st_mode):04o} lets other users read the key; "
                "chmod 600 it"
            )
        key = os.read(fd, 4096).strip()
    finally:
        os.close(fd)
    if len(key) < MIN_KEY_BYTES:
        raise PrivateFileError(
            f"{path}: the key must be at least {MIN_KEY_BYTES} bytes "
            "(e.g. head -c 32 /dev/urandom | base64 > FILE)"
        )
    return key


def _check_dir(path: str) -> None:
    """Refuse a directory another user could write into, or a symlink in its place."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise PrivateFileError(f"{path}: expected a directory, found a symlink or a file")
    if st.st_uid != os.geteuid():
        raise PrivateFileError(f"{path}: owned by uid {st.st_uid}, not by this user")
    if st.st_mode & 0o022:
        raise PrivateFileError(
            f"{path}: mode {stat.S_IMODE(st.st_mode):04o} lets other users create files in it; "
            "use a directory only you can write (chmod 700)"
        )


def private_dir() -> str:
    """$XDG_RUNTIME_DIR/failover-sim, else $TMPDIR/failover-sim-UID, created 0700 and checked."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime) and os.path.isdir(runtime):
        _check_dir(runtime)
        path = os.path.join(runtime, "failover-sim")
    else:
        path = os.path.join(tempfile.gettempdir(), f"failover-sim-{os.geteuid()}")
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    _check_dir(path)
    if stat.S_IMODE(os.lstat(path).st_mode) & 0o077:
        raise PrivateFileError(f"{path}: must be mode 0700 (others may list it)")
    return path


def _remove_stale(path: str) -> None:
    """A token left by a balancer that was killed: ours, 0600, one link. Anything else is refused."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise PrivateFileError(f"{path}: is a symlink; refusing to follow it (remove it)")
    if (
        not stat.S_ISREG(st.st_mode)
        or st.st_uid != os.geteuid()
        or stat.S_IMODE(st.st_mode) != 0o600
        or st.st_nlink != 1
    ):
        raise PrivateFileError(
            f"{path}: exists and was not written by failover-sim "
            f"(owner uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o}); refusing to use it"
        )
    os.unlink(path)


def create_token_file(path: str, token: str) -> tuple[int, int]:
    """Write ``token`` to a new file at ``path`` (mode 0600); its (device, inode)."""
    _check_dir(os.path.dirname(os.path.abspath(path)))
    _remove_stale(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise PrivateFileError(f"{path}: created by someone else meanwhile; refusing") from None
    try:
        os.write(fd, token.encode() + b"\n")
        st = os.fstat(fd)
    finally:
        os.close(fd)
    return st.st_dev, st.st_ino


def remove_token_file(path: str, identity: tuple[int, int]) -> None:
    """Remove the token, if the file at ``path`` is still the one we wrote."""
    with contextlib.suppress(OSError):
        st = os.lstat(path)
        if (st.st_dev, st.st_ino) == identity:
            os.unlink(path)
