"""Limiter safety: the wanted state, the export guard, the watchdog reset and the audit trail."""
