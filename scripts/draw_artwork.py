"""Draw the add-on's icon.png (128x128) and logo.png (250x100) with Pillow."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ADDON = Path(__file__).resolve().parent.parent / "sec1000_addon"
SUN = (255, 184, 28)
GRID = (41, 98, 255)
INK = (33, 37, 41)


def draw_mark(draw: ImageDraw.ImageDraw, x: int, y: int, size: int) -> None:
    """A sun over a transmission tower, with an export arrow: the controller's job."""
    s = size / 128
    draw.ellipse((x + 14 * s, y + 10 * s, x + 54 * s, y + 50 * s), fill=SUN)
    top, base = (x + 80 * s, y + 14 * s), y + 118 * s
    draw.line((top, (x + 56 * s, base)), fill=INK, width=max(2, round(7 * s)))
    draw.line((top, (x + 104 * s, base)), fill=INK, width=max(2, round(7 * s)))
    for level, half in ((44, 18), (70, 24), (96, 30)):
        draw.line(
            (x + (80 - half) * s, y + level * s, x + (80 + half) * s, y + level * s),
            fill=INK,
            width=max(2, round(6 * s)),
        )
    draw.polygon(
        [
            (x + 16 * s, y + 92 * s),
            (x + 40 * s, y + 74 * s),
            (x + 40 * s, y + 84 * s),
            (x + 58 * s, y + 84 * s),
            (x + 58 * s, y + 100 * s),
            (x + 40 * s, y + 100 * s),
            (x + 40 * s, y + 110 * s),
        ],
        fill=GRID,
    )


def main() -> None:
    icon = Image.new("RGBA", (128, 128), (0, 0, 0, 0))
    draw_mark(ImageDraw.Draw(icon), 0, 0, 128)
    icon.save(ADDON / "icon.png")
    logo = Image.new("RGBA", (250, 100), (0, 0, 0, 0))
    draw = ImageDraw.Draw(logo)
    draw_mark(draw, 4, 6, 88)
    font = ImageFont.load_default(size=34)
    draw.text((100, 18), "SEC1000", fill=INK, font=font)
    draw.text((102, 60), "export control", fill=GRID, font=ImageFont.load_default(size=16))
    logo.save(ADDON / "logo.png")


if __name__ == "__main__":
    main()
