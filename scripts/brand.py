"""Draws OctoPlugout's brand images into custom_components/octoplugout/brand/.

The icon: a power symbol whose stem is a hotend nozzle, on a slate tile. The logo: the icon and
the name. Both follow Home Assistant's brand image rules: PNG, transparent, trimmed; icon
256x256 (512x512 @2x); logo with its shortest side 128 px (256 px @2x); a dark_ logo for dark
themes (the icon's own tile reads on both). Drawn four times larger, then scaled down, for
smooth edges. Run again after changing the drawing; the test checks what it wrote.
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

BRAND = Path(__file__).resolve().parent.parent / "custom_components" / "octoplugout" / "brand"
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
SLATE = (31, 42, 51, 255)
ORANGE = (255, 122, 26, 255)
LIGHT = (236, 239, 241, 255)
SUPERSAMPLE = 4
# The power ring's opening at the top, where the nozzle stands, in degrees either side.
GAP = 38


def draw_icon(size: int) -> Image.Image:
    """The icon, ``size`` pixels square."""
    big = size * SUPERSAMPLE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)

    def at(value: float) -> float:
        return value * big / 1000

    draw.rounded_rectangle((0, 0, big - 1, big - 1), radius=at(220), fill=SLATE)
    centre, radius, stroke = (at(500), at(560)), at(290), at(88)
    box = (
        centre[0] - radius,
        centre[1] - radius,
        centre[0] + radius,
        centre[1] + radius,
    )
    draw.arc(box, start=270 + GAP, end=270 - GAP + 360, fill=ORANGE, width=round(stroke))
    # Round caps where the ring opens.
    middle = radius - stroke / 2
    for angle in (270 + GAP, 270 - GAP):
        x = centre[0] + middle * math.cos(math.radians(angle))
        y = centre[1] + middle * math.sin(math.radians(angle))
        half = stroke / 2
        draw.ellipse((x - half, y - half, x + half, y + half), fill=ORANGE)
    # The nozzle: heater block, cone, tip, and the drop of filament it lays.
    draw.rounded_rectangle((at(385), at(120), at(615), at(300)), radius=at(28), fill=LIGHT)
    draw.polygon(
        [(at(415), at(300)), (at(585), at(300)), (at(528), at(430)), (at(472), at(430))],
        fill=LIGHT,
    )
    draw.rectangle((at(472), at(425), at(528), at(455)), fill=LIGHT)
    draw.ellipse((at(455), at(520), at(545), at(610)), fill=ORANGE)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def draw_logo(height: int, text_colour: tuple[int, int, int, int]) -> Image.Image:
    """The icon and the name beside it, ``height`` pixels high, trimmed."""
    big = height * SUPERSAMPLE
    font = ImageFont.truetype(str(FONT), round(big * 0.56))
    left, top, right, bottom = font.getbbox("OctoPlugout")
    gap = round(big * 0.22)
    image = Image.new("RGBA", (big + gap + right - left, big), (0, 0, 0, 0))
    image.alpha_composite(draw_icon(big), (0, 0))
    draw = ImageDraw.Draw(image)
    text_top = (big - (bottom - top)) // 2 - top
    draw.text((big + gap - left, text_top), "Octo", font=font, fill=text_colour)
    octo = font.getlength("Octo")
    draw.text((big + gap - left + octo, text_top), "Plug", font=font, fill=ORANGE)
    plug = font.getlength("Plug")
    draw.text((big + gap - left + octo + plug, text_top), "out", font=font, fill=text_colour)
    image = image.crop(image.getbbox())
    width = round(image.width * height / image.height)
    return image.resize((width, height), Image.Resampling.LANCZOS)


def main() -> None:
    """Write every brand image."""
    BRAND.mkdir(exist_ok=True)
    draw_icon(256).save(BRAND / "icon.png", optimize=True)
    draw_icon(512).save(BRAND / "icon@2x.png", optimize=True)
    for prefix, colour in (("", SLATE), ("dark_", LIGHT)):
        draw_logo(128, colour).save(BRAND / f"{prefix}logo.png", optimize=True)
        draw_logo(256, colour).save(BRAND / f"{prefix}logo@2x.png", optimize=True)


if __name__ == "__main__":
    main()
