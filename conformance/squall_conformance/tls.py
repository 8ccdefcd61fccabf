"""TLS for the conformance suite: the test certificates, made at run time.

The certificates come from reference/tests/tls/make_certs.sh (the C++ TLS tests' script,
called as `make_certs.sh DIR`; see its header for what it makes), plus one self-signed
leaf for 127.0.0.1/localhost made here with the same `openssl` command. They are made once
per driver process into a temporary directory that is removed at exit. Nothing here
touches the network.
"""
from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass

from .paths import MAKE_CERTS

# The names make_certs.sh writes (NAME.pem + NAME.key) that the suite uses, and ours.
SCRIPT_NAMES = ("ca", "server", "expired", "wronghost")
SELF_SIGNED = "selfsigned"


class CertError(RuntimeError):
    pass


@dataclass(frozen=True)
class Certs:
    """PEM files in `dir`: ca.pem (the test CA), and NAME.pem/NAME.key for the leaves:
    server (localhost, 127.0.0.1 and ::1, signed by the CA), expired (the same names, valid
    only in January 2020), wronghost (wrong.example only), selfsigned (127.0.0.1 and
    localhost, signed by itself: an unknown issuer)."""
    dir: str

    @property
    def ca(self):
        return os.path.join(self.dir, "ca.pem")

    def pair(self, name="server"):
        """(certfile, keyfile) of a leaf."""
        return os.path.join(self.dir, f"{name}.pem"), os.path.join(self.dir, f"{name}.key")


def generate(directory: str, script: str = MAKE_CERTS) -> Certs:
    """Make the certificates into `directory` (created if needed)."""
    if not shutil.which("openssl"):
        raise CertError("the openssl command is not installed (apt-get install openssl)")
    if not os.path.exists(script):
        raise CertError(f"{script} not found")
    run(["sh", script, directory])
    key, pem = (os.path.join(directory, f"{SELF_SIGNED}.{ext}") for ext in ("key", "pem"))
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", key, "-out", pem, "-days", "825", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-addext", "basicConstraints=critical,CA:FALSE", "-addext", "extendedKeyUsage=serverAuth"])
    certs = Certs(directory)
    missing = [p for n in SCRIPT_NAMES + (SELF_SIGNED,) for p in certs.pair(n) if not os.path.exists(p)]
    if missing:
        raise CertError(f"{script} did not make {', '.join(os.path.basename(p) for p in missing)}")
    return certs


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, timeout=60)
    if p.returncode:
        raise CertError(f"{' '.join(cmd[:3])} ... exited {p.returncode}: "
                        f"{p.stderr.decode('utf-8', 'replace').strip()[-300:]}")


_certs: Certs | None = None
_lock = threading.Lock()


def certs() -> Certs:
    """This process's certificates, made on first use (thread-safe), removed at exit."""
    global _certs
    with _lock:
        if _certs is None:
            d = tempfile.mkdtemp(prefix="squall-tls-")
            atexit.register(shutil.rmtree, d, True)
            _certs = generate(d)
        return _certs
