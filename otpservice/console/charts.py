"""The overview's chart, drawn on the server as inline SVG: per period, SMS sent (grey) and
delivered (green). Presentation attributes only, no style attributes: the console's
Content-Security-Policy allows no inline styles."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

from otpservice.domain.stats import PeriodPoint

WIDTH = 640
HEIGHT = 160
_TOP = 12
_BOTTOM = 24
_LEFT = 36


def sent_and_delivered(points: Sequence[PeriodPoint], label: Callable[[int], str]) -> Markup:
    """A bar pair per period; `label(start_ms)` names the periods under the axis (every few)."""
    peak = max([1, *(p.sent for p in points), *(p.delivered for p in points)])
    plot_h = HEIGHT - _TOP - _BOTTOM
    slot = (WIDTH - _LEFT) / max(1, len(points))
    bar = max(1.0, slot * 0.38)
    every = max(1, len(points) // 8)
    baseline = HEIGHT - _BOTTOM
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="chart"'
            f' viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img"'
            ' aria-label="SMS sent and delivered per period">'
        ),
        (
            f'<line x1="{_LEFT}" y1="{baseline}" x2="{WIDTH}" y2="{baseline}"'
            ' stroke="#999" stroke-width="1"/>'
        ),
        _axis_label(_TOP + 4, str(peak)),
        _axis_label(baseline, "0"),
    ]
    for index, point in enumerate(points):
        x = _LEFT + index * slot + slot * 0.1
        for offset, value, colour, name in (
            (0.0, point.sent, "#9aa5b1", "sent"),
            (bar, point.delivered, "#2e8540", "delivered"),
        ):
            height = plot_h * value / peak
            parts.append(
                f'<rect x="{x + offset:.1f}" y="{HEIGHT - _BOTTOM - height:.1f}"'
                f' width="{bar:.1f}" height="{height:.1f}" fill="{colour}">'
                f"<title>{escape(label(point.start_ms))}: {value} {name}</title></rect>"
            )
        if index % every == 0:
            parts.append(
                f'<text x="{x + bar:.1f}" y="{HEIGHT - 8}" text-anchor="middle" font-size="10"'
                f' fill="#555">{escape(label(point.start_ms))}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every value above is a number or escaped


def _axis_label(y: int, text: str) -> str:
    return (
        f'<text x="{_LEFT - 4}" y="{y}" text-anchor="end" font-size="10" fill="#555">'
        f"{escape(text)}</text>"
    )
