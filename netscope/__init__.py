"""netscope: what the Linux kernel does with packets, live."""

__version__ = "0.1.0"
