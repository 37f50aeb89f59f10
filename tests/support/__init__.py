"""Support shared by the tests and the benchmark: Redis topologies, the fake SMS provider, the
process manager, ASGI servers on loopback ports and the binaries a test needs."""
