"""STAND-IN config flow: one step, no questions (core asks for areas and currency)."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigFlow, ConfigFlowResult


class StandInFlow(ConfigFlow, domain="nordpool"):
    """Creates the entry at once."""

    VERSION = 1

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Create the entry."""
        return self.async_create_entry(
            title="Nord Pool stand-in", data={"areas": ["SE3"], "currency": "EUR"}
        )
