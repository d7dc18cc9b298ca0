"""Nothing the Supervisor and Core of 2026 deprecate: map types and architectures in config.yaml,
device registry fields and commands in the package."""

from __future__ import annotations

from tests.helpers.packaging import ADDON, config

# Deprecated by the Supervisor in 2026: map types renamed for apps, 32-bit architectures.
LEGACY_MAPS = {"addon_config", "all_addon_configs", "addons", "config"}


DEPRECATED_ARCHES = {"armhf", "armv7", "i386"}


def test_config_uses_nothing_the_2026_supervisor_deprecates() -> None:
    cfg = config()
    maps = {str(entry).split(":")[0] for entry in cfg.get("map", [])}
    assert maps & LEGACY_MAPS == set()
    assert set(cfg["arch"]) & DEPRECATED_ARCHES == set()
    assert "advanced" not in cfg, "ignored since Supervisor 2026.07"
    # No published image yet: the Supervisor builds the Dockerfile on the user's machine.
    assert "image" not in cfg


# Device registry fields and commands deprecated from Core 2026.8 (a device belongs to one
# config entry; removal in 2027.8): the add-on reads none of them.
DEPRECATED_DEVICE_REGISTRY = (
    "primary_config_entry",
    '"config_entries"',
    "via_device",
    "remove_config_entry",
    "config/device_registry/update",
)


def test_no_deprecated_device_registry_field_is_used() -> None:
    package = ADDON / "sec1000"
    used = {
        (path.relative_to(package).as_posix(), word)
        for path in package.rglob("*.py")
        for word in DEPRECATED_DEVICE_REGISTRY
        if word in path.read_text(encoding="utf-8")
    }
    assert used == set()
