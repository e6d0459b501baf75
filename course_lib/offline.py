"""Network guard: an audit hook that refuses every connection that leaves this machine.

``python -m course_lib.offline -f CONNECTION_FILE`` starts an IPython kernel with the guard on;
the tests run every notebook in that kernel, which proves the default path never touches the
network (a download attempt fails loudly with :class:`NetworkBlocked`).
"""
import logging
import os
import socket
import sys


class NetworkBlocked(RuntimeError):
    """Raised when code tries to reach a host other than this machine."""


def _is_local(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    return host in (None, "", "localhost", "::1", "0.0.0.0") or str(host).startswith("127.")


def _guard(event: str, args: tuple) -> None:
    if event == "socket.connect":
        sock, address = args
        if sock.family != getattr(socket, "AF_UNIX", None) and not _is_local(address[0]):
            raise NetworkBlocked(f"network access blocked: connect to {address!r}")
    elif event == "socket.getaddrinfo" and not _is_local(args[0]):
        raise NetworkBlocked(f"network access blocked: lookup of {args[0]!r}")


_installed = False


def block_network() -> None:
    """Install the guard in this process (audit hooks cannot be removed; calling twice is fine)."""
    global _installed
    if not _installed:
        sys.addaudithook(_guard)
        _installed = True


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
