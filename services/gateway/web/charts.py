"""Charts as SVG, drawn on the server from the API's own bodies: a bar chart
of count rows (drivers by race, per year or month, or per group over the
range) and a chart of rates with their 95% intervals as error bars.

Colours come from classes (`s0`..`s4`) styled by static/site.css: the
Content-Security-Policy allows no inline style. Every chart has a title and
a description for screen readers, and the page shows its data table too.
"""

from __future__ import annotations

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 280
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 16, 76
RACE_SERIES = (("white", "White"), ("black", "Black"), ("asian", "Asian"),
               ("native_american", "Native American"), ("other", "Other"))
# md and il record one combined code: a Hispanic driver has no race, so the
# bars show Hispanic as a group of its own (API.md).
COMBINED_SERIES = (("white", "White"), ("black", "Black"), ("hispanic", "Hispanic"),
                   ("asian", "Asian"), ("native_american", "Native American"),
                   ("other", "Other"))


def _nice_top(value: float) -> float:
    """A round number at least `value`, for the axis."""
    if value <= 0:
        return 1
    step = 10 ** (len(str(int(value))) - 1)
    for multiple in (1, 2, 2.5, 5, 10):
        if value <= multiple * step:
            return multiple * step
    return 10 * step


def _axis(top: float, percent: bool = False) -> list[str]:
    parts = []
    plot = HEIGHT - TOP - BOTTOM
    for tick in range(5):
        value = top * tick / 4
        y = TOP + plot - plot * tick / 4
        label = f"{value * 100:g}%" if percent else (
            f"{value:,.0f}" if value == int(value) else f"{value:,g}")
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" '
                     f'y2="{y:.1f}"/><text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{label}</text>')
    return parts


def _svg(title: str, description: str, parts: list[str]) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f'<desc>{escape(description)}</desc>{"".join(parts)}</svg>')


def count_chart(rows: list[dict], title: str, group: str | None = None,
                period: str = "year", series=RACE_SERIES) -> Markup:
    """Drivers by race (`series`: key, label): per period, or (`group`) per
    group over all periods."""
    categories: dict[str, dict[str, int]] = {}
    for row in rows:
        name = str(row[group] if group else row[period])
        totals = categories.setdefault(name, dict.fromkeys(key for key, _ in series))
        for key, _ in series:
            totals[key] = (totals[key] or 0) + row.get(key, 0)
    if not categories:
        return _svg(title, "No stops in this range.", [
            f'<text class="empty" x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">'
            'No stops in this range</text>'])
    top = _nice_top(max(max(values.values()) for values in categories.values()))
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_width / len(categories)
    bar = max(1.0, slot * 0.8 / len(series))
    parts = _axis(top)
    for index, (name, values) in enumerate(categories.items()):
        x0 = LEFT + index * slot + slot * 0.1
        for number, (key, label) in enumerate(series):
            height = plot_height * values[key] / top
            parts.append(
                f'<rect class="bar s{number}" x="{x0 + number * bar:.1f}" '
                f'y="{TOP + plot_height - height:.1f}" width="{bar:.1f}" '
                f'height="{height:.1f}"><title>{escape(name)}, {label}: '
                f'{values[key]:,}</title></rect>')
        if len(categories) <= 16 or index % max(1, len(categories) // 12) == 0:
            x, y = x0 + slot * 0.4, HEIGHT - BOTTOM + 14
            # Long labels (purposes) slant so that neighbours do not overlap.
            slant = (f' transform="rotate(-20 {x:.1f} {y})" text-anchor="end"'
                     if len(name) > 6 else ' text-anchor="middle"')
            parts.append(f'<text class="label" x="{x:.1f}" y="{y}"{slant}>'
                         f'{escape(name if len(name) <= 16 else name[:15] + "…")}</text>')
    parts += _legend(series)
    return _svg(title, f"Bars of drivers by race for each {group or period}, "
                f"{len(categories)} in all; the table below has the numbers.", parts)


def _legend(series) -> list[str]:
    parts = []
    for number, (_, label) in enumerate(series):
        x = LEFT + number * 96
        parts.append(f'<rect class="s{number}" x="{x}" y="{HEIGHT - 22}" width="10" '
                     f'height="10"/><text class="legend" x="{x + 14}" y="{HEIGHT - 13}">'
                     f'{label}</text>')
    return parts


def interval_chart(groups: list[dict], key: str, title: str) -> Markup:
    """Each group's rate (`key`, an interval or null) as a dot with its 95%
    interval as an error bar."""
    values = [group[key] for group in groups]
    highs = [value["high"] for value in values if value]
    if not highs:
        return _svg(title, "No rate can be computed in this range.", [
            f'<text class="empty" x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">'
            'No rate in this range</text>'])
    top = _nice_top(max(highs) * 100) / 100
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_width / len(groups)
    parts = _axis(top, percent=True)

    def y(value: float) -> float:
        return TOP + plot_height - plot_height * value / top

    for index, (group, value) in enumerate(zip(groups, values, strict=True)):
        x = LEFT + index * slot + slot / 2
        name = group["group"].replace("_", " ")
        if value:
            parts.append(
                f'<g class="interval"><line class="error" x1="{x:.1f}" x2="{x:.1f}" '
                f'y1="{y(value["low"]):.1f}" y2="{y(value["high"]):.1f}"/>'
                f'<line class="error" x1="{x - 6:.1f}" x2="{x + 6:.1f}" '
                f'y1="{y(value["low"]):.1f}" y2="{y(value["low"]):.1f}"/>'
                f'<line class="error" x1="{x - 6:.1f}" x2="{x + 6:.1f}" '
                f'y1="{y(value["high"]):.1f}" y2="{y(value["high"]):.1f}"/>'
                f'<circle class="point" cx="{x:.1f}" cy="{y(value["value"]):.1f}" r="5">'
                f'<title>{escape(name)}: {value["value"] * 100:.1f}% '
                f'({value["low"] * 100:.1f}% to {value["high"] * 100:.1f}%)</title>'
                f'</circle></g>')
        parts.append(f'<text class="label" x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" '
                     f'text-anchor="middle">{escape(name)}</text>')
    return _svg(title, "Each group's rate as a dot, its 95% confidence interval as a "
                "bar; the table below has the numbers.", parts)
