"""The add-on's one error root."""

from __future__ import annotations


class AddonError(Exception):
    """Base of every error the add-on raises on purpose: the device's and its protocol's
    (`Sec1000Error`), the options' (`OptionsError`), Home Assistant's (`HomeAssistantError`), an
    unknown controller (`UnknownController`) and a sign-in that cannot finish (`SignInError`)."""
