"""The use cases: sending codes, checking them, reading and cancelling verifications, recording
deliveries, idempotent starts. No Litestar and no Redis here: each depends on the small
repository Protocols of ports.py, which store/ implements on Redis and memory.py in memory."""
