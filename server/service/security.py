"""Who may talk to the server: loopback by default, ZeroMQ CURVE keys beyond it.

Key folder layout (made by ``server/make_keys.py``)::

    KEYS/server.key, KEYS/server.key_secret   the server's key pair (give clients server.key)
    KEYS/authorized_clients/NAME.key          public keys of clients the server accepts
    KEYS/clients/NAME.key, NAME.key_secret    key pairs made for clients (hand them over, then delete)
"""
from __future__ import annotations

import ipaddress
import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import zmq
import zmq.auth

SERVER_NAME = "server"
AUTHORIZED_DIR = "authorized_clients"
CLIENTS_DIR = "clients"


class InsecureBindError(RuntimeError):
    """A non-loopback bind without CURVE keys and without an explicit --insecure."""


class KeysError(RuntimeError):
    """The key folder lacks the files CURVE needs."""


def is_loopback_endpoint(endpoint: str) -> bool:
    """True for tcp on 127.0.0.0/8, ::1 or localhost, and for local-only transports (ipc, inproc)."""
    scheme = endpoint.split("://", 1)[0].lower()
    if scheme in ("ipc", "inproc"):
        return True
    if scheme != "tcp":
        return False
    host = urlsplit(endpoint).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # '*', an interface name, a DNS name: may reach beyond this machine


def check_bind(endpoint: str, keys_dir: Path | None, insecure: bool) -> None:
    """Raise InsecureBindError where ``endpoint`` reaches beyond loopback with neither keys nor --insecure."""
    if is_loopback_endpoint(endpoint) or keys_dir is not None or insecure:
        return
    raise InsecureBindError(
        f"refusing to bind {endpoint} without authentication: make keys with "
        f"'python server/make_keys.py --keys DIR' and pass --keys DIR, or pass --insecure to accept "
        f"anyone who can reach this address")


def server_keypair(keys_dir: Path) -> tuple[bytes, bytes]:
    secret_file = Path(keys_dir) / f"{SERVER_NAME}.key_secret"
    if not secret_file.is_file():
        raise KeysError(f"{secret_file} is missing; run 'python server/make_keys.py --keys {keys_dir}'")
    public, secret = zmq.auth.load_certificate(str(secret_file))
    if secret is None:
        raise KeysError(f"{secret_file} holds no secret key")
    return public, secret


def authorized_dir(keys_dir: Path) -> Path:
    folder = Path(keys_dir) / AUTHORIZED_DIR
    if not folder.is_dir() or not any(folder.glob("*.key")):
        raise KeysError(f"{folder} holds no client public keys; run "
                        f"'python server/make_keys.py --keys {keys_dir} --client NAME'")
    return folder


def make_server_keys(keys_dir: Path) -> Path:
    """Create the server's key pair (kept if it exists); returns the public key file."""
    keys_dir = Path(keys_dir)
    keys_dir.mkdir(parents=True, exist_ok=True)
    public = keys_dir / f"{SERVER_NAME}.key"
    if not (keys_dir / f"{SERVER_NAME}.key_secret").exists():
        _, secret = zmq.auth.create_certificates(str(keys_dir), SERVER_NAME)
        os.chmod(secret, 0o600)
    return public


def make_client_keys(keys_dir: Path, name: str) -> tuple[Path, Path]:
    """Create a client key pair under ``clients/`` and authorise its public key; returns (public, secret)."""
    if not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"client name {name!r} must be letters, digits, '-' or '_'")
    keys_dir = Path(keys_dir)
    clients, authorized = keys_dir / CLIENTS_DIR, keys_dir / AUTHORIZED_DIR
    clients.mkdir(parents=True, exist_ok=True)
    authorized.mkdir(parents=True, exist_ok=True)
    public, secret = (Path(p) for p in zmq.auth.create_certificates(str(clients), name))
    os.chmod(secret, 0o600)
    shutil.copyfile(public, authorized / public.name)
    return public, secret


def configure_client_curve(socket: zmq.Socket, server_public_file: Path, client_secret_file: Path) -> None:
    """Make ``socket`` a CURVE client of the server whose public key file is given."""
    server_public, _ = zmq.auth.load_certificate(str(server_public_file))
    public, secret = zmq.auth.load_certificate(str(client_secret_file))
    if secret is None:
        raise KeysError(f"{client_secret_file} holds no secret key")
    socket.curve_serverkey = server_public
    socket.curve_publickey = public
    socket.curve_secretkey = secret
