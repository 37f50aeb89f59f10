"""Redis state: the only package that imports redis. Every read-then-write is one Lua script."""
