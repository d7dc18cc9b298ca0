"""The meter: energy counters, the meter check (export over the limit) and the compliance report."""
