"""Bar charts as inline SVG, rendered on the server: no JavaScript, nothing from elsewhere.

Each chart is an image with a <title> and a <desc> (its accessible name and summary); the
page puts a data table with the same numbers next to it. Colours are the Okabe–Ito
palette, which stays distinguishable with the common colour-vision deficiencies, and every
bar carries its own <title> with the exact figure. Only presentation attributes are used
(no style attributes), so the strict Content-Security-Policy holds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
WIDTH = 720
FONT = 12


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[int]


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5 or 5 × 10^k that is at least `value` (axis top)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def _number(value: float) -> str:
    return f"{value:g}" if value < 1e6 else f"{value:.3g}"


def _open(chart_id: str, title: str, desc: str, height: int) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" font-size="{FONT}" '
        f'font-family="system-ui, sans-serif">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>',
    ]


def _legend(labels: Sequence[str], y: int) -> list[str]:
    parts = ['<g class="legend">']
    x = 40
    for i, label in enumerate(labels):
        parts.append(f'<rect x="{x}" y="{y - 10}" width="12" height="12" fill="{PALETTE[i % len(PALETTE)]}"/>')
        parts.append(f'<text x="{x + 16}" y="{y}">{escape(label)}</text>')
        x += 28 + int(len(label) * FONT * 0.55)
    parts.append("</g>")
    return parts


def stacked_bars(*, chart_id: str, title: str, desc: str, categories: Sequence[str],
                 series: Sequence[Series], bar_title: Callable[[str, str, int], str]) -> Markup:
    """Vertical bars, one per category (e.g. a day), each stacked from the series.
    `bar_title(category, series_label, value)` words the tooltip of one segment."""
    height, top, bottom, left, right = 280, 34, 30, 44, 10
    plot_h, plot_w = height - top - bottom, WIDTH - left - right
    totals = [sum(s.values[i] for s in series) for i in range(len(categories))]
    ceiling = nice_ceiling(max(totals, default=0))
    parts = _open(chart_id, title, desc, height)
    parts += _legend([s.label for s in series], 16)
    for fraction in (0.0, 0.5, 1.0):  # the axis: 0, half and the top, with grid lines
        y = top + plot_h - fraction * plot_h
        parts.append(f'<line x1="{left}" x2="{WIDTH - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d0d0d8"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_number(ceiling * fraction)}</text>')
    slot = plot_w / max(len(categories), 1)
    bar = max(slot * 0.8, 1.0)
    for i, category in enumerate(categories):
        x = left + i * slot + (slot - bar) / 2
        base: float = top + plot_h
        for j, s in enumerate(series):
            value = s.values[i]
            if value <= 0:
                continue
            h = value / ceiling * plot_h
            base -= h
            parts.append(
                f'<rect x="{x:.2f}" y="{base:.2f}" width="{bar:.2f}" height="{h:.2f}" '
                f'fill="{PALETTE[j % len(PALETTE)]}"><title>{escape(bar_title(category, s.label, value))}</title></rect>')
    shown = sorted({0, len(categories) // 2, len(categories) - 1}) if categories else []
    for i in shown:
        x = left + i * slot + slot / 2
        anchor = "start" if i == 0 else "end" if i == len(categories) - 1 else "middle"
        parts.append(f'<text x="{x:.1f}" y="{height - 10}" text-anchor="{anchor}">{escape(categories[i])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text above went through escape()


def horizontal_bars(*, chart_id: str, title: str, desc: str, items: Sequence[tuple[str, float]],
                    value_label: Callable[[float], str]) -> Markup:
    """One labelled horizontal bar per item, its value written at its end."""
    row, top, label_w, right = 24, 8, 200, 90
    height = top * 2 + row * max(len(items), 1)
    plot_w = WIDTH - label_w - right
    ceiling = nice_ceiling(max((v for _label, v in items), default=0))
    parts = _open(chart_id, title, desc, height)
    for i, (label, value) in enumerate(items):
        y = top + i * row
        w = max(value, 0) / ceiling * plot_w
        parts.append(f'<text x="{label_w - 8}" y="{y + row * 0.65:.1f}" text-anchor="end">{escape(label)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 4}" width="{w:.2f}" height="{row - 8}" '
                     f'fill="{PALETTE[0]}"><title>{escape(label)}: {escape(value_label(value))}</title></rect>')
        parts.append(f'<text x="{label_w + w + 6:.2f}" y="{y + row * 0.65:.1f}">{escape(value_label(value))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text above went through escape()
