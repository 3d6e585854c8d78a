"""Bar charts drawn on the server as SVG: no scripts, nothing from anywhere else, and a
table beside each chart for screen readers."""

from html import escape

from markupsafe import Markup

COLOURS = {
    "sent": "#1d6b45",
    "queued": "#1f5f99",
    "sending": "#5a4fcf",
    "retrying": "#b36b00",
    "failed": "#b3261e",
    "cancelled": "#6b6b6b",
    "active": "#1d6b45",
    "ended": "#6b6b6b",
    "pending_confirmation": "#1f5f99",
}


def bars(title: str, rows: list[tuple[str, int]], width: int = 560) -> Markup:
    """Horizontal bars, one per (label, value), scaled to the largest value."""
    bar_height, gap, label_width = 22, 8, 170
    height = max(1, len(rows)) * (bar_height + gap) + 10
    largest = max((value for _, value in rows), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="100%" '
        f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>"
    ]
    for index, (label, value) in enumerate(rows):
        y = 5 + index * (bar_height + gap)
        length = int((width - label_width - 60) * value / largest)
        colour = COLOURS.get(label.split(" ")[-1], "#1f5f99")
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 16}" text-anchor="end" font-size="13" '
            f'fill="#1b1b1b">{escape(label)}</text>'
            f'<rect x="{label_width}" y="{y}" width="{max(length, 1)}" height="{bar_height}" '
            f'fill="{colour}"/>'
            f'<text x="{label_width + length + 6}" y="{y + 16}" font-size="13" '
            f'fill="#1b1b1b">{value}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every value inside is escaped above
