"""anonlib: a runnable model of Linux anonymous memory and PG_anon_exclusive."""

__version__ = "0.1.0"
