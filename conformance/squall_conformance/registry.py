"""The registry of implementation descriptions: every implementation under test is data.

A description is a TOML file (format: conformance/implementations/README.md) saying, per
contract layer, how to start the program and what it supports. Conformance, load and the
fuzzers read descriptions through this module only; nothing else knows a peer by name.

    desc = registry.load("reference")               # implementations/reference.toml of the suite
    desc = registry.load("path/to/mine.toml")
    desc = registry.from_url("mine", "http://127.0.0.1:8080")

A malformed description raises DescriptionError naming the file and the field.
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field

from . import paths
from .bounded import run_bounded

BUILTIN_DIR = paths.suite("implementations")
PYTHON = "/usr/bin/python3"  # Debian's, with python3-tornado and python3-aiohttp

LAYERS = ("server", "loop", "stream", "client")
PROFILES = ("rfc", "tornado")
TIMEOUTS = ("idle", "header", "body")
# The endpoint (feature) names of contract §1 that cases declare in `needs`.
ENDPOINTS = frozenset({
    "root-get", "echo", "echo-headers", "cookie", "plaintext", "json", "args", "form", "path", "named",
    "status", "bytes", "stream", "gzip", "redirect", "slow", "error", "httperror", "upload", "asterisk",
    "404", "405",
})
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
PLACEHOLDER_RE = re.compile(r"\{([a-z][a-z0-9_]*)\}")
CONDITION_RE = re.compile(r"#if (!?)(tls|catch_all): ?")
VERSION_TIMEOUT = 10.0


class DescriptionError(ValueError):
    """A description that cannot be used: the message names the file and the field."""


@dataclass(frozen=True)
class ServerSpec:
    command: tuple = ()
    announce_port: bool = False
    catch_all: tuple | None = None
    endpoints: object = "all"            # "all", "probe" or a frozenset of ENDPOINTS
    tls: tuple | None = None
    workers: tuple | None = None
    timeouts: dict = field(default_factory=dict)           # idle/header/body -> argument tuple
    timeout_defaults: dict = field(default_factory=dict)   # idle/header/body -> seconds
    files: dict = field(default_factory=dict)               # name in workdir -> template path
    env: dict = field(default_factory=dict)
    url: str | None = None               # a server the user started (no command)
    catch_all_url: str | None = None


@dataclass(frozen=True)
class ProgramSpec:
    """The stream probe, loop probe or client adapter."""
    command: tuple
    announce_port: bool = False


@dataclass(frozen=True)
class LoadSpec:
    """[load]: what the load suite (load/run.py) measures it on. Scenario names are checked
    by the load suite, which owns them."""
    scenarios: tuple | None = None       # measured only on these (None: every scenario)
    reason: str = ""                     # why the others are not measured
    skip: dict = field(default_factory=dict)   # scenario -> why it is not measured


@dataclass(frozen=True)
class Description:
    name: str
    title: str
    path: str | None                      # the TOML file (None: --url)
    here: str                             # its folder: relative paths start there
    profiles: tuple = ("rfc",)
    version_command: tuple | None = None
    server: ServerSpec | None = None
    stream: ProgramSpec | None = None
    loop: ProgramSpec | None = None
    client: ProgramSpec | None = None
    load: LoadSpec | None = None

    def has_layer(self, layer: str) -> bool:
        return getattr(self, layer) is not None

    @property
    def layers(self) -> tuple:
        return tuple(layer for layer in LAYERS if self.has_layer(layer))

    @property
    def source(self) -> str:
        """Where it was described: the file, relative to the repository when inside it."""
        if self.path is None:
            return f"--url {self.server.url}" if self.server else "--url"
        if paths.REPO is None:
            return self.path
        rel = os.path.relpath(self.path, paths.REPO)
        return self.path if rel.startswith("..") else rel


# ---- loading ------------------------------------------------------------------------------

def resolve(spec: str) -> str:
    """The description file that `spec` names: a path (contains / or ends in .toml; a
    relative one not found here is looked up in the suite's folder, so that
    outside/node/node.toml names the suite's Node.js programs in a clone and installed
    alike), or the name of a built-in description."""
    if "/" in spec or spec.endswith(".toml"):
        if not os.path.isabs(spec) and not os.path.exists(spec) and os.path.isfile(paths.suite(spec)):
            return paths.suite(spec)
        return os.path.abspath(spec)
    return os.path.join(BUILTIN_DIR, spec + ".toml")


def builtin_names() -> list[str]:
    return sorted(f[:-5] for f in os.listdir(BUILTIN_DIR) if f.endswith(".toml"))


def load(spec: str) -> Description:
    """Read and check one description (by built-in name or path)."""
    path = resolve(spec)
    if not os.path.isfile(path):
        known = ", ".join(builtin_names())
        raise DescriptionError(f"{spec}: no such description (a file path, or one of: {known})")
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise DescriptionError(f"{path}: not valid TOML: {e}") from None
    except OSError as e:
        raise DescriptionError(f"{path}: {e.strerror}") from None
    return parse(data, path)


def parse(data: dict, path: str) -> Description:
    """Check a decoded description; every problem names the file and the field."""
    c = _Checker(path)
    c.only(data, "", {"name", "title", "profiles", "version", "load", *LAYERS})
    name = c.string(data, "name", required=True)
    if not NAME_RE.match(name):
        c.fail("name", f"{name!r} is not a name (letters, digits, '.', '_', '-'; at most 64)")
    profiles = tuple(c.string_list(data, "profiles") or ("rfc",))
    for p in profiles:
        if p not in PROFILES:
            c.fail("profiles", f"unknown profile {p!r} (one of {', '.join(PROFILES)})")
    here = os.path.dirname(path)
    d = Description(
        name=name, title=c.string(data, "title") or name, path=path, here=here, profiles=profiles,
        version_command=tuple(c.string_list(data, "version")) or None,
        server=_server(c, data["server"]) if "server" in data else None,
        stream=_program(c, data["stream"], "stream", port=True) if "stream" in data else None,
        loop=_program(c, data["loop"], "loop") if "loop" in data else None,
        client=_program(c, data["client"], "client") if "client" in data else None,
        load=_load(c, data["load"]) if "load" in data else None,
    )
    if not d.layers:
        c.fail("", "describes no layer: give at least one of [server], [stream], [loop], [client]")
    if d.load is not None and d.server is None:
        c.fail("load", "needs a [server] table (the load suite measures the server app)")
    return d


def _load(c, t) -> LoadSpec:
    c.table(t, "load")
    c.only(t, "load", {"scenarios", "reason", "skip"})
    scenarios = tuple(c.string_list(t, "scenarios", "load", required=True)) if "scenarios" in t else None
    for s in scenarios or ():
        if not NAME_RE.match(s):
            c.fail("load.scenarios", f"{s!r} is not a scenario name")
    reason = t.get("reason", "")
    if not isinstance(reason, str) or ("reason" in t and not reason.strip()):
        c.fail("load.reason", "must be a non-empty string")
    if reason and scenarios is None:
        c.fail("load.reason", "says why scenarios are left out: give load.scenarios too")
    skip = t.get("skip", {})
    c.table(skip, "load.skip")
    for k, v in skip.items():
        if not NAME_RE.match(k):
            c.fail(f"load.skip.{k}", "is not a scenario name")
        if not isinstance(v, str) or not v.strip():
            c.fail(f"load.skip.{k}", "give the reason it is not measured (a non-empty string)")
    return LoadSpec(scenarios=scenarios, reason=reason, skip=dict(skip))


def _server(c, t) -> ServerSpec:
    c.table(t, "server")
    c.only(t, "server", {"command", "announce_port", "catch_all", "endpoints", "tls", "workers", "timeouts",
                         "timeout_defaults", "files", "env", "url", "catch_all_url"})
    if "url" in t:
        return _running_server(c, t)
    command = tuple(c.string_list(t, "command", "server", required=True))
    endpoints = t.get("endpoints", "all")
    if isinstance(endpoints, str):
        if endpoints not in ("all", "probe"):
            c.fail("server.endpoints", f"{endpoints!r}: give \"all\", \"probe\" or a list of endpoint names")
    else:
        names = c.string_list(t, "endpoints", "server")
        unknown = sorted(set(names) - ENDPOINTS)
        if unknown:
            c.fail("server.endpoints", f"unknown endpoint(s) {', '.join(unknown)} (known: {', '.join(sorted(ENDPOINTS))})")
        endpoints = frozenset(names)
    timeouts = t.get("timeouts", {})
    c.table(timeouts, "server.timeouts")
    c.only(timeouts, "server.timeouts", set(TIMEOUTS))
    defaults = t.get("timeout_defaults", {})
    c.table(defaults, "server.timeout_defaults")
    c.only(defaults, "server.timeout_defaults", set(TIMEOUTS))
    for k, v in defaults.items():
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
            c.fail(f"server.timeout_defaults.{k}", "must be a positive number of seconds")
    files = t.get("files", {})
    c.table(files, "server.files")
    for k, v in files.items():
        if not isinstance(v, str) or not k or "/" in k or k.startswith("."):
            c.fail(f"server.files.{k}", "give \"file name\" = \"template path\" (a plain name in the work directory)")
        if not os.path.isfile(os.path.join(c.here, v)):
            c.fail(f"server.files.{k}", f"template {v!r} not found next to the description")
    env = t.get("env", {})
    c.table(env, "server.env")
    for k, v in env.items():
        if not isinstance(v, str):
            c.fail(f"server.env.{k}", "must be a string")
    spec = ServerSpec(
        command=command, announce_port=c.boolean(t, "announce_port", "server"),
        catch_all=_opt_args(c, t, "catch_all", "server"), endpoints=endpoints,
        tls=_opt_args(c, t, "tls", "server"), workers=_opt_args(c, t, "workers", "server"),
        timeouts={k: tuple(c.string_list(timeouts, k, "server.timeouts")) for k in timeouts},
        timeout_defaults=dict(defaults), files=dict(files), env=dict(env))
    text = " ".join(command) + "".join(_read(os.path.join(c.here, f)) for f in files.values())
    if "{port}" not in text:
        c.fail("server.command", "{port} appears neither in the command nor in a rendered file")
    return spec


def _running_server(c, t) -> ServerSpec:
    """A server the user runs: `url` (and `catch_all_url`) instead of a command."""
    extra = sorted(set(t) - {"url", "catch_all_url", "endpoints"})
    if extra:
        c.fail("server", f"{', '.join(extra)}: not for a server given by url (the driver does not start it)")
    urls = {k: c.string(t, k) for k in ("url", "catch_all_url") if k in t}
    for k, u in urls.items():
        if not re.match(r"https?://[^/:]+(:\d+)?/?\Z", u):
            c.fail(f"server.{k}", f"{u!r}: give http://HOST:PORT or https://HOST:PORT")
    endpoints = t.get("endpoints", "probe")
    if endpoints != "probe":
        names = c.string_list(t, "endpoints", "server")
        unknown = sorted(set(names) - ENDPOINTS)
        if unknown:
            c.fail("server.endpoints", f"unknown endpoint(s) {', '.join(unknown)}")
        endpoints = frozenset(names)
    return ServerSpec(endpoints=endpoints, url=urls["url"], catch_all_url=urls.get("catch_all_url"))


def _program(c, t, layer, port=False) -> ProgramSpec:
    c.table(t, layer)
    c.only(t, layer, {"command", "announce_port"} if port else {"command"})
    command = tuple(c.string_list(t, "command", layer, required=True))
    if port and "{port}" not in command:
        c.fail(f"{layer}.command", "must contain {port} (the probe listens on it)")
    return ProgramSpec(command, c.boolean(t, "announce_port", layer) if port else False)


def _opt_args(c, t, key, where):
    return tuple(c.string_list(t, key, where)) if key in t else None


def _read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError):
        return ""


class _Checker:
    def __init__(self, path):
        self.path = path
        self.here = os.path.dirname(path)

    def fail(self, fld, msg):
        raise DescriptionError(f"{self.path}: {fld + ': ' if fld else ''}{msg}")

    def only(self, t, where, allowed):
        extra = sorted(set(t) - allowed)
        if extra:
            self.fail(where or "top level", f"unknown field(s) {', '.join(extra)} (known: {', '.join(sorted(allowed))})")

    def table(self, t, where):
        if not isinstance(t, dict):
            self.fail(where, "must be a table")

    def string(self, t, key, required=False):
        if key not in t:
            if required:
                self.fail(key, "missing")
            return None
        if not isinstance(t[key], str) or not t[key]:
            self.fail(key, "must be a non-empty string")
        return t[key]

    def string_list(self, t, key, where="", required=False):
        fld = f"{where}.{key}" if where else key
        if key not in t:
            if required:
                self.fail(fld, "missing")
            return []
        v = t[key]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            self.fail(fld, "must be a list of strings")
        if required and not v:
            self.fail(fld, "must not be empty")
        return v

    def boolean(self, t, key, where):
        v = t.get(key, False)
        if not isinstance(v, bool):
            self.fail(f"{where}.{key}", "must be true or false")
        return v


def from_url(name: str, url: str, catch_all_url: str | None = None) -> Description:
    """A server the user started: the server layer only, endpoints found by the pre-flight."""
    if not NAME_RE.match(name):
        raise DescriptionError(f"--url {name}=...: {name!r} is not a name (letters, digits, '.', '_', '-')")
    return Description(name=name, title=f"server at {url}", path=None, here=os.getcwd(), profiles=("rfc",),
                       server=ServerSpec(endpoints="probe", url=url, catch_all_url=catch_all_url))


# ---- rendering ------------------------------------------------------------------------------

def render(text: str, values: dict, where: str) -> str:
    """Replace every {name}; an unknown name is a DescriptionError naming `where`."""
    def sub(m):
        if m.group(1) not in values:
            raise DescriptionError(f"{where}: unknown placeholder {{{m.group(1)}}} "
                                   f"(known here: {', '.join('{' + k + '}' for k in sorted(values))})")
        return str(values[m.group(1)])
    return PLACEHOLDER_RE.sub(sub, text)


def render_args(desc: Description, args, values: dict, where: str) -> list[str]:
    return [render(a, values, f"{desc.source}: {where}") for a in args]


def render_file(template: str, values: dict, flags: dict, where: str) -> str:
    """A config file: placeholders replaced, `#if [!]flag: ` lines kept only when true."""
    out = []
    for line in template.splitlines(keepends=True):
        m = CONDITION_RE.match(line.lstrip())
        if m:
            if flags.get(m.group(2), False) == (m.group(1) == "!"):
                continue
            line = line.lstrip()[m.end():]
        out.append(line)
    return render("".join(out), values, where)


def program(desc: Description, command, values: dict, where: str) -> list[str]:
    """A command line with its placeholders filled and its program found: a path relative to
    the description's folder, or a name on PATH."""
    argv = render_args(desc, command, values, where)
    exe = argv[0]
    if "/" in exe and not os.path.isabs(exe):
        argv[0] = os.path.normpath(os.path.join(desc.here, exe))
    return argv


# ---- version ------------------------------------------------------------------------------

def version(desc: Description, values: dict) -> str:
    """The first line the version command prints (bounded in time and size), or why not."""
    if not desc.version_command:
        return ""
    try:
        argv = program(desc, desc.version_command, values, "version")
    except DescriptionError as e:
        return f"(version command failed: {e})"
    p = run_bounded(argv, VERSION_TIMEOUT, limit=1 << 16)
    if p.problem:
        return f"(version command: {p.problem})"
    out = (p.stdout or p.stderr)[:4096].decode("utf-8", "replace").strip()
    return out.splitlines()[0][:200] if out else "(version command printed nothing)"
