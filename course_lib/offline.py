"""Network guard: an audit hook that keeps the course kernel, and what it starts, off the network.

``python -m course_lib.offline -f CONNECTION_FILE`` starts an IPython kernel with the guard on
(the ``course-offline`` kernel). The tests, the build and the benchmark run every notebook in it,
which proves that the course's default path never touches the network. What is guaranteed, in
a process with the guard on:

- **sockets**: connecting to, sending a datagram to (``sendto``/``sendmsg``) or looking up
  (``getaddrinfo``, ``gethostbyname[_ex]``, ``gethostbyaddr``, ``getnameinfo``) any host other
  than this machine raises :class:`NetworkBlocked`. This machine is ``localhost``, a loopback
  address (127.0.0.0/8, ::1, also IPv4-mapped) or the unspecified address (0.0.0.0, ::), parsed
  strictly (``127.evil.com`` is a host name, not a loopback address); Unix sockets are allowed;
  raw packet sockets are refused;
- **programs started from it** (``subprocess``, ``os.system``, ``os.exec*``, ``os.posix_spawn``,
  ``os.spawn*``, and so IPython's ``!cmd``, ``%pip``, ``%%bash``): a known network tool
  (:data:`NETWORK_PROGRAMS`: pip, uv, conda, wget, curl, ssh, ``git clone/fetch/pull/push``,
  ``python -m pip``, …), also inside a shell command line, is refused with ``NetworkBlocked``;
  any Python program started from it runs with the guard on too (``PYTHONPATH`` carries a
  ``sitecustomize`` that installs it).

Not covered: a program that is not Python and not on the list (say, a compiled binary that opens
sockets itself). The guard is a tripwire against accidental downloads, not a sandbox.
"""
import logging
import os
import shlex
import socket
import sys
from ipaddress import ip_address
from pathlib import Path


class NetworkBlocked(RuntimeError):
    """Raised when code tries to reach a host other than this machine."""


SITE_DIR = Path(__file__).resolve().parent / "jupyter" / "offline_site"  # holds sitecustomize.py
NETWORK_PROGRAMS = frozenset({
    "pip", "pip3", "uv", "uvx", "pipx", "conda", "mamba", "micromamba", "poetry", "npm", "npx", "yarn",
    "wget", "curl", "aria2c", "ssh", "scp", "sftp", "rsync", "nc", "ncat", "netcat", "socat", "telnet", "ftp",
    "ping", "ping6", "nslookup", "dig", "host", "apt", "apt-get", "huggingface-cli", "hf", "gsutil", "aws", "kaggle",
})
GIT_NETWORK_COMMANDS = frozenset({"clone", "fetch", "pull", "push", "ls-remote", "submodule"})
PYTHON_NETWORK_MODULES = frozenset({"pip", "ensurepip", "uv", "huggingface_hub.commands.huggingface_cli"})
_PREFIXES = frozenset({"sudo", "env", "nohup", "time", "exec", "command", "nice", "xargs", "stdbuf", "timeout"})


def _is_local(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if host is None or host == "" or (isinstance(host, str) and host.lower() in ("localhost", "localhost.")):
        return True
    if isinstance(host, int):  # AF_INET addresses may be given as integers
        host = str(ip_address(host)) if 0 <= host < 2 ** 32 else ""
    if not isinstance(host, str):
        return False
    try:
        address = ip_address(host.split("%")[0])  # drop an IPv6 zone ("fe80::1%eth0")
    except ValueError:
        return False  # a host name: only "localhost" is known to be this machine
    mapped = getattr(address, "ipv4_mapped", None)
    address = mapped or address
    return address.is_loopback or address.is_unspecified


def _check_address(family, address, what: str) -> None:
    if family == getattr(socket, "AF_UNIX", None) or address is None:
        return
    if family in (socket.AF_INET, socket.AF_INET6):
        if not _is_local(address[0]):
            raise NetworkBlocked(f"network access blocked: {what} {address!r} (the course runs offline)")
    elif family == getattr(socket, "AF_PACKET", None):
        raise NetworkBlocked(f"network access blocked: {what} on a raw packet socket")


def _command_words(argv) -> list[list[str]]:
    """The simple commands in an argument list, expanding ``sh -c '...'`` command lines."""
    if isinstance(argv, (str, bytes, os.PathLike)):
        return _shell_commands(os.fsdecode(argv))
    argv = [os.fsdecode(a) for a in argv]
    if len(argv) >= 3 and os.path.basename(argv[0]) in ("sh", "bash", "dash", "zsh") and argv[1] in ("-c", "-lc"):
        return _shell_commands(argv[2])
    return [argv]


def _shell_commands(line: str) -> list[list[str]]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()\n")
    lexer.whitespace_split = True
    commands, current = [], []
    try:
        for token in lexer:
            if token and set(token) <= set(";&|()\n"):
                commands.append(current)
                current = []
            else:
                current.append(token)
    except ValueError:  # unbalanced quotes: judge the words we have
        pass
    return [c for c in [*commands, current] if c]


def network_program(argv) -> str | None:
    """The network tool that ``argv`` (an argument list or a shell command line) would run, or None."""
    for words in _command_words(argv):
        while words and (os.path.basename(words[0]) in _PREFIXES or "=" in words[0].lstrip("=")
                         or words[0].startswith("-") or words[0].isdigit()):
            words = words[1:]  # VAR=value, sudo, env -i, nice -n 5, timeout 10, ...
        if not words:
            continue
        program = os.path.basename(words[0])
        if (program in NETWORK_PROGRAMS or program.startswith(("pip3.", "pip-"))
                or program == "git" and GIT_NETWORK_COMMANDS & set(words[1:])
                or program.startswith("python") and "-m" in words[:-1]
                and words[words.index("-m") + 1] in PYTHON_NETWORK_MODULES):
            return " ".join([program, *words[1:]])[:80]
    return None


_guard_pid = None


def _refuse_program(event: str, argv) -> None:
    tool = network_program(argv)
    if tool is None:
        return
    message = (f"network access blocked: the course kernel does not run network tools ({tool!r}); "
               "the course runs offline and everything it needs is installed")
    if event == "os.exec" and os.getpid() != _guard_pid:
        # In a forked child (IPython's `!cmd` forks, then execs): report and leave the child
        # quietly, instead of unwinding a copy of the kernel.
        os.write(2, f"NetworkBlocked: {message}\n".encode())
        os._exit(126)
    raise NetworkBlocked(message)


def _guard(event: str, args: tuple) -> None:
    if event.startswith("socket."):
        if event == "socket.connect":
            _check_address(args[0].family, args[1], "connect to")
        elif event in ("socket.sendto", "socket.sendmsg"):
            _check_address(args[0].family, args[1], "send to")
        elif event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr"):
            if not _is_local(args[0]):
                raise NetworkBlocked(f"network access blocked: lookup of {args[0]!r} (the course runs offline)")
        elif event == "socket.getnameinfo":
            if not _is_local(args[0][0]):
                raise NetworkBlocked(f"network access blocked: lookup of {args[0][0]!r} (the course runs offline)")
        elif event == "socket.__new__" and args[1] == getattr(socket, "AF_PACKET", None):
            raise NetworkBlocked("network access blocked: raw packet sockets")
    elif event == "subprocess.Popen":
        _refuse_program(event, args[1] if args[1] is not None else args[0])
    elif event == "os.system":
        _refuse_program(event, ["sh", "-c", os.fsdecode(args[0])])
    elif event in ("os.exec", "os.posix_spawn"):
        _refuse_program(event, args[1])
    elif event == "os.spawn":
        _refuse_program(event, args[2])


def block_network() -> None:
    """Install the guard in this process and in the Python programs it starts (audit hooks cannot
    be removed; calling twice is fine)."""
    global _guard_pid
    if _guard_pid is None:
        sys.addaudithook(_guard)
        _guard_pid = os.getpid()
        paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
        if str(SITE_DIR) not in paths:
            os.environ["PYTHONPATH"] = os.pathsep.join([str(SITE_DIR), *filter(None, paths)])


def set_kernel_threads() -> None:
    """The kernel runs torch on one thread (kernel.json); ``COURSE_KERNEL_THREADS=N`` in the
    environment that starts the kernel overrides it (``make test-portable`` runs with 2)."""
    threads = os.environ.get("COURSE_KERNEL_THREADS")
    if threads:
        if not threads.isdigit() or int(threads) < 1:
            raise SystemExit(f"COURSE_KERNEL_THREADS must be a positive integer, got {threads!r}")
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = threads


class _QuietLocalTransport(logging.Filter):
    """The kernel listens on this machine only: ipykernel's warning about unencrypted TCP is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without encryption" not in record.getMessage()


if __name__ == "__main__":
    set_kernel_threads()
    block_network()
    logging.getLogger("IPKernelApp").addFilter(_QuietLocalTransport())
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()
