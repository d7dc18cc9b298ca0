"""Draw the add-on's store artwork with Pillow: icon.png (128x128) and logo.png (250x100).

The mark: the sun over a PV panel, an arrow carrying its power to a transmission tower, and a
bar across the arrow (the export limit). Drawn at 4x and scaled down for smooth edges.

    .venv/bin/python scripts/draw_artwork.py
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ADDON = Path(__file__).resolve().parent.parent / "sec1000_addon"
SCALE = 4
NAVY = (24, 39, 71, 255)
SUN = (255, 183, 27, 255)
PANEL = (56, 132, 255, 255)
PANEL_LINE = (24, 39, 71, 255)
TOWER = (236, 241, 250, 255)
ARROW = (255, 183, 27, 255)
LIMIT = (255, 92, 92, 255)
INK = (33, 37, 41, 255)
MUTED = (86, 96, 112, 255)

Point = tuple[float, float]


def draw_mark(image: Image.Image, left: float, top: float, size: float) -> None:
    """Draw the mark into `image` inside the square (left, top, size) given in 128ths."""
    draw = ImageDraw.Draw(image)

    def p(x: float, y: float) -> Point:
        return (left + x * size / 128, top + y * size / 128)

    def w(width: float) -> int:
        return max(1, round(width * size / 128))

    # Tile.
    draw.rounded_rectangle((p(0, 0), p(128, 128)), radius=w(26), fill=NAVY)
    # Sun with rays.
    cx, cy = 31, 29
    draw.ellipse((p(cx - 13, cy - 13), p(cx + 13, cy + 13)), fill=SUN)
    for k in range(8):
        angle = math.pi * k / 4
        inner, outer = 17, 22
        draw.line(
            (
                p(cx + inner * math.cos(angle), cy + inner * math.sin(angle)),
                p(cx + outer * math.cos(angle), cy + outer * math.sin(angle)),
            ),
            fill=SUN,
            width=w(3),
        )
    # PV panel: a slanted grid of cells.
    corners = [p(10, 104), p(22, 62), p(62, 62), p(54, 104)]
    draw.polygon(corners, fill=PANEL)
    for t in (1 / 3, 2 / 3):
        draw.line(
            (_lerp(corners[0], corners[1], t), _lerp(corners[3], corners[2], t)),
            fill=PANEL_LINE,
            width=w(2.5),
        )
    for t in (1 / 3, 2 / 3):
        draw.line(
            (_lerp(corners[0], corners[3], t), _lerp(corners[1], corners[2], t)),
            fill=PANEL_LINE,
            width=w(2.5),
        )
    draw.line((p(32, 104), p(32, 116)), fill=PANEL, width=w(4))
    # Transmission tower: two legs, cross-arms and bracing.
    top_point, base_left, base_right = p(96, 14), p(80, 116), p(112, 116)
    draw.line((top_point, base_left), fill=TOWER, width=w(5))
    draw.line((top_point, base_right), fill=TOWER, width=w(5))
    for y, half in ((36, 20), (58, 16)):
        draw.line((p(96 - half, y), p(96 + half, y)), fill=TOWER, width=w(4.5))
    for y1, y2 in ((58, 82), (82, 116)):
        a = _lerp(top_point, base_left, (y1 - 14) / 102)
        b = _lerp(top_point, base_right, (y2 - 14) / 102)
        c = _lerp(top_point, base_right, (y1 - 14) / 102)
        d = _lerp(top_point, base_left, (y2 - 14) / 102)
        draw.line((a, b), fill=TOWER, width=w(2.5))
        draw.line((c, d), fill=TOWER, width=w(2.5))
    # Export arrow from the panel to the tower, and the limit bar across it.
    draw.line((p(56, 80), p(74, 80)), fill=ARROW, width=w(8))
    draw.polygon([p(72, 69), p(86, 80), p(72, 91)], fill=ARROW)
    draw.line((p(64, 66), p(64, 94)), fill=LIMIT, width=w(5))


def _lerp(a: Point, b: Point, t: float) -> Point:
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)


def icon() -> Image.Image:
    """The square store icon, exactly 128x128."""
    big = Image.new("RGBA", (128 * SCALE, 128 * SCALE), (0, 0, 0, 0))
    draw_mark(big, 0, 0, 128 * SCALE)
    return big.resize((128, 128), Image.Resampling.LANCZOS)


def logo() -> Image.Image:
    """The store logo, 250x100: the mark and the name."""
    big = Image.new("RGBA", (250 * SCALE, 100 * SCALE), (0, 0, 0, 0))
    draw_mark(big, 6 * SCALE, 6 * SCALE, 88 * SCALE)
    draw = ImageDraw.Draw(big)
    left, room = 104 * SCALE, (250 - 104 - 4) * SCALE
    size = 36 * SCALE
    while draw.textlength("SEC1000", font=ImageFont.load_default(size=size)) > room:
        size -= SCALE
    draw.text((left, 14 * SCALE), "SEC1000", fill=INK, font=ImageFont.load_default(size=size))
    small = ImageFont.load_default(size=15 * SCALE)
    draw.text((left + 2 * SCALE, 58 * SCALE), "GoodWe export", fill=MUTED, font=small)
    draw.text((left + 2 * SCALE, 76 * SCALE), "control, local", fill=MUTED, font=small)
    return big.resize((250, 100), Image.Resampling.LANCZOS)


def main() -> None:
    """Write icon.png and logo.png into the add-on folder."""
    icon().save(ADDON / "icon.png", optimize=True)
    logo().save(ADDON / "logo.png", optimize=True)


if __name__ == "__main__":
    main()
