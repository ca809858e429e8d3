"""The TUI ends within EXIT_DEADLINE_S of Ctrl-C, SIGTERM or SIGHUP (ssh dropped, tmux session
killed), however busy its UI thread is.

Why a deadline thread: Textual handles keys and its own exit on the UI thread. A handler that runs
for seconds (a slow model, a stuck worker it waits for) held the exit back while every BPF program
stayed attached. The signal handlers and the driver's input thread arm the deadline; the app exits
the usual way if it can, and when it has not within EXIT_GRACE_S, the deadline thread detaches the
probes, puts the terminal back and ends the process (the kernel frees every BPF program whose last
file descriptor closes, so even a detach that cannot finish in time leaves nothing attached).
"""

from __future__ import annotations

import contextlib
import os
import sys
import termios
import threading
import time
from collections.abc import Callable
from typing import Any

from textual import events
from textual.drivers.linux_driver import LinuxDriver
from textual.message import Message

EXIT_GRACE_S = 1.2  # for the app to leave the way it always does
CLOSE_S = 0.5  # for the probes to detach, past the grace
EXIT_DEADLINE_S = EXIT_GRACE_S + CLOSE_S
# Leave the alternate screen, show the cursor, stop mouse reporting and bracketed paste.
RESET_TERMINAL = b"\x1b[?1049l\x1b[?25h\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?1015l\x1b[?2004l"


class ExitGuard:
    """Armed once with an exit code; `close` detaches the probes (it may run twice: the app's own
    exit may be half done)."""

    def __init__(self, close: Callable[[], None]) -> None:
        self._close = close
        self._lock = threading.Lock()
        self.code: int | None = None
        self._tty: list[Any] | None = None
        with contextlib.suppress(OSError, termios.error, ValueError, AttributeError):
            if sys.__stdin__ is not None and sys.__stdin__.isatty():  # the modes before Textual's
                self._tty = termios.tcgetattr(sys.__stdin__.fileno())

    def arm(self, code: int) -> None:
        with self._lock:
            if self.code is not None:
                return
            self.code = code
        threading.Thread(target=self._deadline, args=(code,), name="exit-deadline", daemon=True).start()

    def _deadline(self, code: int) -> None:
        time.sleep(EXIT_GRACE_S)
        closer = threading.Thread(target=self._close, name="exit-close", daemon=True)
        closer.start()
        closer.join(CLOSE_S)
        self._restore_terminal()
        os._exit(code)

    def _restore_terminal(self) -> None:
        with contextlib.suppress(OSError, termios.error, ValueError, AttributeError):
            os.write(sys.__stdout__.fileno() if sys.__stdout__ else 1, RESET_TERMINAL)
        with contextlib.suppress(OSError, termios.error, ValueError, AttributeError):
            if self._tty is not None and sys.__stdin__ is not None:
                termios.tcsetattr(sys.__stdin__.fileno(), termios.TCSADRAIN, self._tty)


class GuardedDriver(LinuxDriver):
    """Textual's Linux driver, whose input thread arms the app's exit deadline on Ctrl-C: the key
    itself reaches the app only when its UI thread is free."""

    def process_message(self, message: Message) -> None:
        if isinstance(message, events.Key) and message.key == "ctrl+c":
            guard = getattr(self._app, "exit_guard", None)
            if isinstance(guard, ExitGuard):
                guard.arm(0)  # a quit key, as the app's own Ctrl-C binding exits
        super().process_message(message)
