"""The pumping simulator that bench/pumping.py runs: simulated days of a tenant's logins mixed
with SMS pumping attacks, decided by the fraud guard's real scripts on a real Redis.

    phones.py    valid mobile numbers of a country: spread over its blocks, or sequential
    traffic.py   the legitimate logins: countries, daily curve, conversion, resends, IPs
    attacks.py   the attack shapes, each a list of requests of the measured days
    engine.py    the simulation: one timeline played for every tenant, on a simulated clock
    memory.py    MEMORY USAGE of a tenant's counters, over the scopes they count
    runner.py    one run on a Redis URL: the simulation, then the memory figures
    results.py   every result as a typed msgspec Struct (the results JSON), and the goals
    report.py    the tables; the README section's place in bench/README.md
    readme.py    the README section's text, with the run's own figures

The package is imported as `bench.pumping_sim` (bench/pumping.py puts the repository root on
sys.path; tests/integration/test_pumping_simulator.py runs from it).
"""
