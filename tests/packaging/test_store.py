"""What the app store shows: the repository's metadata and its one URL, the store's words (apps,
App store), and the icon and logo the artwork script draws."""

from __future__ import annotations

import importlib.util
import re

import yaml
from PIL import Image, ImageChops, ImageStat

from tests.helpers.packaging import ADDON, ROOT, config, docs_section, docs_text


def test_repository_metadata_and_one_url_everywhere() -> None:
    repository = yaml.safe_load((ROOT / "repository.yaml").read_text())
    assert repository["name"] and repository["maintainer"]
    url = repository["url"]
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url), url
    assert config()["url"] == url
    assert f"`{url}`" in docs_section("Installation")
    assert f'org.opencontainers.image.source="{url}"' in (ADDON / "Dockerfile").read_text()


def test_the_store_names_it_an_app_and_docs_give_both_store_paths() -> None:
    """Home Assistant's UI of 2026 says apps and App store: the names the store shows never say
    add-on; DOCS gives the path to the store in the UI of 2026 and in the older one."""
    old_word = re.compile(r"\badd-ons?\b", re.I)
    assert "Settings → Apps → App store" in docs_section("Installation")
    assert "Settings → Add-ons → Add-on store" in docs_text()
    assert "Settings → Apps → App store" in (ADDON / "README.md").read_text()
    assert not old_word.search(config()["description"])
    repository = yaml.safe_load((ROOT / "repository.yaml").read_text())
    assert not old_word.search(repository["name"])
    for lang in ("en", "de"):
        text = (ADDON / "translations" / f"{lang}.yaml").read_text(encoding="utf-8")
        assert not old_word.search(text), lang


def test_artwork_sizes() -> None:
    with Image.open(ADDON / "icon.png") as icon:
        assert icon.format == "PNG" and icon.size == (128, 128)
    with Image.open(ADDON / "logo.png") as logo:
        assert logo.format == "PNG"
        width, height = logo.size
    assert 225 <= width <= 275 and 90 <= height <= 110, "about 250x100"


def test_artwork_is_what_the_script_draws() -> None:
    """The committed PNGs come from scripts/draw_artwork.py (font rendering may differ a little)."""
    spec = importlib.util.spec_from_file_location(
        "draw_artwork", ROOT / "scripts" / "draw_artwork.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, drawn in (("icon", module.icon()), ("logo", module.logo())):
        with Image.open(ADDON / f"{name}.png") as committed:
            assert committed.size == drawn.size, name
            difference = ImageChops.difference(committed.convert("RGBA"), drawn.convert("RGBA"))
            mean = sum(ImageStat.Stat(difference).mean) / 4
            assert mean < 2.0, (name, mean)
            alpha = committed.convert("RGBA").getchannel("A").point(lambda a: 255 if a > 128 else 0)
            covered = ImageStat.Stat(alpha).mean[0] / 255
            assert covered > 0.3, (name, "mostly empty")
