"""Small pieces every layer shares: atomic files, backoff, number parsing, units. No I/O policy."""
