"""Headless Chromium for the report test: find or install Debian's chromium, run it, judge pixels.

Playwright (the Python package, which ships its own node driver but no browser) drives Debian's
chromium through `executable_path`; `playwright install` (a browser download) is never used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image, ImageChops, ImageStat

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/lib/chromium/chromium")

# Known to work as root on a closed network: no sandbox (root), no GPU, and no background
# connections (they are refused here, many at a time, and slow every start).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)

APT_TIMEOUT_S = 900


class BrowserUnavailable(RuntimeError):
    """Chromium is not installed and cannot be installed here (the reason is the message)."""


def find_chromium() -> str | None:
    for candidate in CHROMIUM_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium")


def ensure_chromium() -> str:
    """The path of Debian's chromium, installed with apt-get first if it is missing."""
    found = find_chromium()
    if found:
        return found
    if not shutil.which("apt-get"):
        raise BrowserUnavailable("chromium is missing and there is no apt-get to install it")
    if os.geteuid() != 0:
        raise BrowserUnavailable(
            "chromium is missing and installing it needs root: apt-get install -y chromium"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=APT_TIMEOUT_S, env=env
            )
        except subprocess.TimeoutExpired as exc:
            raise BrowserUnavailable(f"{' '.join(cmd)} ran over {APT_TIMEOUT_S} s") from exc
        if proc.returncode != 0:
            raise BrowserUnavailable(
                f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-1500:]}"
            )
    found = find_chromium()
    if not found:
        raise BrowserUnavailable("apt-get install chromium succeeded but no chromium binary found")
    return found


def chromium_version(executable: str) -> str:
    proc = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=60)
    return proc.stdout.strip()


@contextmanager
def chromium_page(
    executable: str,
    profile_dir: Path,
    *,
    timeout_s: float = 20,
    width: int = 1400,
    height: int = 1000,
) -> Iterator[object]:
    """A Playwright page in a fresh headless Chromium whose profile lives in `profile_dir`."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # a dev dependency: fail loudly rather than skip
        raise ImportError(
            "the report test drives Chromium with Playwright: pip install -e '.[dev]'"
        ) from exc

    profile_dir.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile_dir),
            executable_path=executable,
            headless=True,
            args=list(CHROMIUM_FLAGS),
            viewport={"width": width, "height": height},
            device_scale_factor=1,
            accept_downloads=False,
            timeout=timeout_s * 1000,
        )
        try:
            context.set_default_timeout(timeout_s * 1000)
            context.set_default_navigation_timeout(timeout_s * 1000)
            page = context.pages[0] if context.pages else context.new_page()
            yield page
        finally:
            context.close()


def distinct_colours(image: Image.Image) -> int:
    """How many different RGB colours an image holds (a blank or broken render holds a few)."""
    colours = image.convert("RGB").getcolors(maxcolors=1 << 24)
    return len(colours) if colours is not None else 1 << 24


def pixel_spread(image: Image.Image) -> float:
    """Standard deviation of the grey levels: 0 for a uniform image."""
    return ImageStat.Stat(image.convert("L")).stddev[0]


def unmatched_fraction(screen: Image.Image, png: Image.Image, threshold: int = 48) -> float:
    """Share of the PNG's pixels that a screenshot of it shown at 1:1 does not reproduce.

    The screenshot of the <img> element may be a pixel larger (sub-pixel layout), so the PNG is
    matched at offsets 0 and 1 in x and y, and the best match counts. A pixel counts as unmatched
    when its grey level differs by more than `threshold` (0..255).
    """
    screen_l = flatten(screen).convert("L")
    png_l = flatten(png).convert("L")
    width, height = png_l.size
    if screen_l.width < width or screen_l.height < height:
        return 1.0
    best = 1.0
    for dx in range(min(2, screen_l.width - width + 1)):
        for dy in range(min(2, screen_l.height - height + 1)):
            window = screen_l.crop((dx, dy, dx + width, dy + height))
            off = ImageChops.difference(window, png_l).point(lambda v: 255 if v > threshold else 0)
            best = min(best, ImageStat.Stat(off).mean[0] / 255)
    return best


def flatten(image: Image.Image) -> Image.Image:
    """The image over white, as a browser shows a transparent PNG on the report's white page."""
    if image.mode in ("RGBA", "LA", "P"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
